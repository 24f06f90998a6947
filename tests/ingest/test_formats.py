"""Each format's loader, from small files written by the test."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path

import pytest
from pypdf import PdfWriter

from qa.ingest import IngestError, load_file, markdown
from qa.types import Document
from tests.ingest.pdfs import make_pdf


def write(root: Path, name: str, content: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


def load_one(root: Path, name: str, content: str | bytes) -> Document:
    documents = load_file(write(root, name, content), root)
    assert len(documents) == 1
    return documents[0]


class TestText:
    def test_headline_first_line(self, tmp_path: Path) -> None:
        doc = load_one(
            tmp_path, "news/a1.txt", "Markets  rally on news\n\nShares rose.\n\nThen fell.\n"
        )
        assert doc.title == "Markets rally on news"
        assert doc.text == "Markets rally on news\n\nShares rose.\n\nThen fell."
        assert doc.doc_id == doc.path == "news/a1.txt"
        assert doc.metadata == {"format": "txt"}
        assert (
            doc.content_hash == hashlib.sha256((tmp_path / "news/a1.txt").read_bytes()).hexdigest()
        )

    def test_masthead_goes_to_metadata(self, tmp_path: Path) -> None:
        text = (
            "Daily Planet\n\nHero saves city\n\nBy Lois Lane\n\n"
            "The city was saved today.\n\nShare it\n"
        )
        doc = load_one(tmp_path, "planet.txt", text)
        assert doc.title == "Hero saves city"
        assert doc.metadata == {"format": "txt", "site": "Daily Planet", "author": "Lois Lane"}
        assert "Daily Planet" not in doc.text
        assert doc.text.endswith("The city was saved today.")

    def test_long_first_line_falls_back_to_file_name(self, tmp_path: Path) -> None:
        sentence = " ".join(["word"] * 30) + "."
        doc = load_one(tmp_path, "long_story-1.txt", sentence)
        assert doc.title == "Long story 1"
        assert doc.text == sentence

    def test_latin1_file_is_decoded(self, tmp_path: Path) -> None:
        doc = load_one(tmp_path, "cafe.txt", "Le café\n\nUn café coûte £2 – cher.".encode("cp1252"))
        assert doc.title == "Le café"
        assert "Un café coûte £2 – cher." in doc.text

    def test_real_tags_in_a_text_file_are_parsed(self, tmp_path: Path) -> None:
        doc = load_one(
            tmp_path, "t.txt", "<h1>Big news</h1><p>First <b>bold</b> para.</p><p>Two.</p>"
        )
        assert doc.title == "Big news"
        assert doc.text == "Big news\n\nFirst bold para.\n\nTwo."
        assert doc.metadata["markup"] == "html"

    def test_escaped_html_inside_a_script(self, tmp_path: Path) -> None:
        raw = (
            'render({"html":"\\u003cp\\u003eIt\\u0027s a \\u003ca href=\\u0022/x\\u0022\\u003elink'
            '\\u003c/a\\u003e \\u2013 ok.\\u003c/p\\u003e\\n\\u003ch2\\u003eA \\"section\\"'
            '\\u003c/h2\\u003e\\u003cp\\u003eMore.\\u003c/p\\u003e","id":"x"});\n'
            "A summary of the piece, Ann Smith writes.\n|\n"
        )
        doc = load_one(tmp_path, "s.txt", raw)
        assert doc.text == (
            "A summary of the piece, Ann Smith writes.\n\nIt's a link – ok.\n\n"
            'A "section"\n\nMore.'
        )
        assert doc.title == "A summary of the piece"
        assert doc.metadata["author"] == "Ann Smith"
        assert doc.metadata["markup"] == "escaped-html"


class TestHtml:
    PAGE = """<!doctype html><html><head>
      <title>Summit ends | The Daily</title>
      <meta property="og:site_name" content="The Daily">
      <meta property="article:published_time" content="2019-02-20T10:00:00Z">
      <meta name="author" content="Kim Lee">
      <link rel="canonical" href="https://daily.example/summit">
      <style>p { color: red }</style><script>var x = "Share it";</script>
    </head><body>
      <header>Site header</header><nav><a href="/">Home</a> | <a href="/world">World</a></nav>
      <article>
        <h1>Summit ends without deal</h1>
        <p>The   leaders <a href="/x">met</a> in <em>Hanoi</em>.
           They left early.</p>
        <div>Advertisement</div>
        <p>Line one<br>same paragraph<br><br>new paragraph</p>
        <ul><li>First point</li><li>Second point</li></ul>
        <!-- a comment -->
      </article>
      <aside>Related stories</aside><form>Subscribe</form><footer>© The Daily</footer>
    </body></html>"""

    def test_page(self, tmp_path: Path) -> None:
        doc = load_one(tmp_path, "summit.html", self.PAGE)
        assert doc.title == "Summit ends"
        assert doc.text == (
            "Summit ends without deal\n\nThe leaders met in Hanoi. They left early.\n\n"
            "Line one same paragraph\n\nnew paragraph\n\nFirst point\n\nSecond point"
        )
        assert doc.metadata == {
            "format": "html",
            "site": "The Daily",
            "url": "https://daily.example/summit",
            "date": "2019-02-20",
            "date_source": "2019-02-20T10:00:00Z",
            "author": "Kim Lee",
        }

    def test_h1_title_and_time_element(self, tmp_path: Path) -> None:
        page = (
            '<meta property="og:url" content="https://x.example/a">'
            '<h1>Only heading</h1><time datetime="2005-01-02">2 Jan</time><p>Body.</p>'
        )
        doc = load_one(tmp_path, "a.htm", page)
        assert doc.title == "Only heading"
        assert doc.metadata["date"] == "2005-01-02"
        assert doc.metadata["url"] == "https://x.example/a"
        assert doc.metadata["format"] == "html"

    def test_nesting_deeper_than_the_recursion_limit(self, tmp_path: Path) -> None:
        depth = 20_000
        page = (
            "<p>Before the pile.</p>"
            + "<div><span>" * depth
            + "Deep <b>inside</b>."
            + "</span></div>" * depth
            + "<p>After the pile.</p>"
        )
        doc = load_one(tmp_path, "deep.html", page)
        assert doc.text == "Before the pile.\n\nDeep inside.\n\nAfter the pile."

    def test_deep_markup_inside_a_text_file(self, tmp_path: Path) -> None:
        doc = load_one(
            tmp_path, "deep.txt", "<div>" * 5_000 + "<p>Deep text.</p>" + "</div>" * 5_000
        )
        assert doc.text == "Deep text."


def test_markdown(tmp_path: Path) -> None:
    md = (
        "# The *real* title\n\nSome **bold** text with [a link](https://x.example) and `code`.\n"
        "A soft-wrapped line.\n\n## Section two\n\n- item one\n- item two\n\n> quoted words\n"
    )
    doc = load_one(tmp_path, "notes.md", md)
    assert doc.title == "The real title"
    assert doc.text == (
        "The real title\n\nSome bold text with a link and code. A soft-wrapped line.\n\n"
        "Section two\n\nitem one\n\nitem two\n\nquoted words"
    )
    assert doc.metadata == {"format": "md"}


def test_markdown_nested_past_the_parsers_depth_keeps_every_word(tmp_path: Path) -> None:
    # markdown-it drops blocks nested deeper than its limit; such a file is read as plain text.
    md = "# Pile\n\nBefore the pile.\n\n" + "> " * 500 + "Deep inside.\n"
    doc = load_one(tmp_path, "deep.md", md)
    assert "Deep inside." in doc.text and "Before the pile." in doc.text
    lists = "".join("  " * i + f"- level{i}\n" for i in range(60))
    doc = load_one(tmp_path, "lists.md", lists)
    assert all(f"level{i}" in doc.text for i in range(60))


def test_markdown_past_the_size_bound_is_read_as_plain_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The parser is pure Python (about a second a megabyte); past the bound the file is plain
    # text, read in linear time, every word kept and the markup left as written.
    md = "# Heading\n\nSome **bold** words.\n"
    assert load_one(tmp_path, "small.md", md).text == "Heading\n\nSome bold words."
    monkeypatch.setattr(markdown, "MAX_MARKDOWN_BYTES", len(md.encode()) - 1)
    doc = load_one(tmp_path, "big.md", md)
    assert "**bold**" in doc.text and "Heading" in doc.text


class TestJson:
    def test_single_object(self, tmp_path: Path) -> None:
        record = {
            "title": "T",
            "text": "Para one.\n\nPara two.",
            "url": "https://u",
            "date": "2020",
        }
        path = write(tmp_path, "one.json", json.dumps(record))
        [doc] = load_file(path, tmp_path)
        assert (doc.doc_id, doc.title, doc.text) == ("one.json", "T", "Para one.\n\nPara two.")
        # "2020" names no single day: kept as written, with no ``date`` to filter on.
        assert doc.metadata == {"format": "json", "url": "https://u", "date_source": "2020"}
        assert doc.content_hash == hashlib.sha256(path.read_bytes()).hexdigest()

    def test_list_gives_numbered_documents(self, tmp_path: Path) -> None:
        long_text = " ".join(["word"] * 40) + "."
        records = [
            {"text": "Headline here\n\nBody one."},
            {"title": "Second", "text": "Body two."},
            {"text": long_text},
        ]
        docs = load_file(write(tmp_path, "d/many.json", json.dumps(records)), tmp_path)
        assert [d.doc_id for d in docs] == ["d/many.json#1", "d/many.json#2", "d/many.json#3"]
        assert {d.path for d in docs} == {"d/many.json"}
        assert [d.title for d in docs] == ["Headline here", "Second", "Many #3"]

    def test_jsonl_record_hash_follows_its_record(self, tmp_path: Path) -> None:
        lines = ['{"text": "Alpha."}', '{"text": "Beta."}', '{"text": "Gamma."}']
        before = load_file(write(tmp_path, "r.jsonl", "\n".join(lines)), tmp_path)
        lines[1] = '{"text": "Beta, edited."}'
        after = load_file(write(tmp_path, "r.jsonl", "\n".join(lines)), tmp_path)
        assert [d.doc_id for d in after] == ["r.jsonl#1", "r.jsonl#2", "r.jsonl#3"]
        changed = [
            b.doc_id for b, a in zip(before, after, strict=True) if b.content_hash != a.content_hash
        ]
        assert changed == ["r.jsonl#2"]

    def test_bad_jsonl_records_are_skipped_with_one_warning(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        content = (
            '{"text": "Good one."}\n{not json\n\n[1, 2]\n{"title": "no text"}\n'
            '{"text": "Good two."}\n'
        )
        with caplog.at_level(logging.WARNING, logger="qa.ingest"):
            docs = load_file(write(tmp_path, "mixed.jsonl", content), tmp_path)
        assert [d.doc_id for d in docs] == ["mixed.jsonl#1", "mixed.jsonl#5"]
        assert [d.text for d in docs] == ["Good one.", "Good two."]
        [record] = caplog.records
        assert "mixed.jsonl" in record.getMessage() and "2, 3, 4" in record.getMessage()

    @pytest.mark.parametrize(
        ("content", "reason"),
        [("{broken", "malformed JSON"), ('"a string"', "not an object or list"),
         ('{"title": "x"}', "text"), ('[{"text": "   "}]', "no record")],
    )  # fmt: skip
    def test_bad_json_files(self, tmp_path: Path, content: str, reason: str) -> None:
        with pytest.raises(IngestError, match=reason):
            load_file(write(tmp_path, "bad.json", content), tmp_path)


class TestPdf:
    def test_text_and_information(self, tmp_path: Path) -> None:
        pdf = make_pdf(
            [["Liaison offices were discussed in", "Hanoi at the summit.", "Trump met Kim."],
             ["A second page (with parentheses)."]],
            info={"Title": "Liaison report", "Author": "Jane Doe"},
        )  # fmt: skip
        doc = load_one(tmp_path, "report.pdf", pdf)
        assert doc.title == "Liaison report"
        assert doc.text == (
            "Liaison offices were discussed in Hanoi at the summit.\n\nTrump met Kim.\n\n"
            "A second page (with parentheses)."
        )
        assert doc.metadata == {"format": "pdf", "author": "Jane Doe"}

    def test_title_from_first_line_without_information(self, tmp_path: Path) -> None:
        doc = load_one(tmp_path, "untitled.pdf", make_pdf([["Annual review.", "Body follows."]]))
        assert doc.title == "Annual review."
        assert doc.metadata == {"format": "pdf"}

    def test_blank_pdf_has_no_text(self, tmp_path: Path) -> None:
        writer = PdfWriter()
        writer.add_blank_page(width=200, height=200)
        path = tmp_path / "blank.pdf"
        with path.open("wb") as handle:
            writer.write(handle)
        with pytest.raises(IngestError, match="no text"):
            load_file(path, tmp_path)

    def test_broken_pdf(self, tmp_path: Path) -> None:
        with pytest.raises(IngestError, match="broken PDF"):
            load_file(
                write(tmp_path, "broken.pdf", b"%PDF-1.4\nthis is not a pdf at all"), tmp_path
            )
