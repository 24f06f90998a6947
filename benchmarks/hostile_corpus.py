"""A corpus of hostile files, written the same way for the same seed: what ingestion must survive.

Every kind of file a new user's folder (or a scraper's output) can hold and a loader can choke
on: binary, empty, NUL bytes, UTF-16, byte-order marks, Latin-1, control, bidi and zero-width
characters, lone surrogates, text with no punctuation or no spaces, one character repeated, one
huge line, HTML nested 20,000 deep, broken and script-laden HTML, malformed and wrong-shaped
JSON and JSON Lines, fake and truncated PDFs, unknown extensions, long and non-ASCII file names,
deep sub-folders, and ordinary articles among them.

``write_corpus(folder, count)`` writes ``count`` files, kinds taken in turn, so any ``count`` of
at least ``len(KINDS)`` holds every kind. Used by ``tests/test_hostile_corpus.py`` (a sample)
and ``benchmarks/hostile.py`` (all of it).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from tests.ingest.pdfs import make_pdf

#: A file to write: its path relative to the corpus root, and its bytes.
File = tuple[str, bytes]

_WORDS = (
    "talks summit leaders agreed border trade minister said on Tuesday the and of in a to "
    "economy growth market shares rose fell percent government election vote council city "
    "police report storm rain season team match goal coach players win final record"
).split()


def _sentence(rng: random.Random, words: int = 12) -> str:
    text = " ".join(rng.choice(_WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def _article(rng: random.Random, paragraphs: int = 4) -> str:
    body = [" ".join(_sentence(rng) for _ in range(3)) for _ in range(paragraphs)]
    return "\n\n".join([f"Headline {rng.randrange(10**6)} on the {rng.choice(_WORDS)}", *body])


def binary(rng: random.Random, i: int) -> File:
    return f"binary/noise-{i}.txt", rng.randbytes(rng.randrange(1, 20_000))


def image_named_text(rng: random.Random, i: int) -> File:
    return f"image-{i}.html", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(4_000)


def empty(rng: random.Random, i: int) -> File:
    return f"empty-{i}{rng.choice(['.txt', '.md', '.html', '.json', '.jsonl', '.pdf'])}", b""


def whitespace_only(rng: random.Random, i: int) -> File:
    return f"blank-{i}.txt", "".join(
        rng.choice(" \t\n\r\f\v\u00a0\u3000") for _ in range(500)
    ).encode()


def nul_bytes(rng: random.Random, i: int) -> File:
    text = _article(rng).encode()
    cut = rng.randrange(len(text))
    return f"nul-{i}.txt", text[:cut] + b"\x00" * rng.randrange(1, 50) + text[cut:]


def utf16(rng: random.Random, i: int) -> File:
    return f"utf16-{i}.txt", _article(rng).encode(rng.choice(["utf-16", "utf-16-be", "utf-16-le"]))


def utf16_broken(rng: random.Random, i: int) -> File:
    # A byte-order mark, then an odd number of bytes and an unpaired high surrogate.
    return f"utf16-broken-{i}.txt", b"\xff\xfe" + "Broken".encode("utf-16-le") + b"\x00\xd8A"


def utf8_bom(rng: random.Random, i: int) -> File:
    return f"bom-{i}.md", b"\xef\xbb\xbf# " + _article(rng).encode()


def latin1(rng: random.Random, i: int) -> File:
    text = _article(rng).replace("the", "thé").replace("a ", "à ") + "\n\nCafé, naïve, façade, £5."
    return f"latin1-{i}.txt", text.encode("latin-1")


def cp1252(rng: random.Random, i: int) -> File:
    return f"cp1252-{i}.txt", ("“Quoted” – " + _article(rng) + " … €").encode("cp1252")


def control_characters(rng: random.Random, i: int) -> File:
    text = "".join(
        c + (chr(rng.randrange(1, 32)) if rng.random() < 0.02 else "") for c in _article(rng)
    )
    return f"control-{i}.txt", text.encode()


def mostly_control(rng: random.Random, i: int) -> File:
    return f"control-heavy-{i}.txt", bytes(rng.randrange(1, 32) for _ in range(2_000))


def bidi(rng: random.Random, i: int) -> File:
    marks = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
    text = "".join(c + (rng.choice(marks) if c == " " else "") for c in _article(rng))
    return f"bidi-{i}.txt", ("שלום עולם مرحبا بالعالم\n\n" + text).encode()


def zero_width(rng: random.Random, i: int) -> File:
    marks = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
    text = "".join(c + rng.choice(marks) for c in _article(rng))
    return f"zero-width-{i}.html", f"<p>{text}</p>".encode()


def lone_surrogates(rng: random.Random, i: int) -> File:
    # Surrogates encoded as UTF-8 bytes (CESU-style): invalid UTF-8, as some Java tools write.
    text = _article(rng).encode()
    return f"surrogate-{i}.txt", text.replace(b" the ", b" \xed\xa0\x80the\xed\xb0\x80 ")


def json_surrogate_escapes(rng: random.Random, i: int) -> File:
    # Valid JSON whose strings decode to lone surrogates.
    record = '{"title": "Lone \\ud800 title", "author": "X \\udfff", "text": "%s \\ud83d end"}'
    return f"surrogate-escape-{i}.jsonl", (record % _sentence(rng)).encode()


def no_punctuation(rng: random.Random, i: int) -> File:
    return f"no-punctuation-{i}.txt", " ".join(rng.choice(_WORDS) for _ in range(8_000)).encode()


def no_spaces(rng: random.Random, i: int) -> File:
    return f"no-spaces-{i}.txt", "".join(rng.choice(_WORDS) for _ in range(8_000)).encode()


def repeated_character(rng: random.Random, i: int) -> File:
    char = rng.choice("x=-.*#_~aé字")
    return f"repeated-{i}.txt", (char * rng.randrange(40_000, 100_001)).encode()


def separator_lines(rng: random.Random, i: int) -> File:
    parts = []
    for _ in range(200):
        parts.append(rng.choice("=-*_#~") * rng.randrange(3, 400))
        if rng.random() < 0.3:
            parts.append(_sentence(rng))
    return f"rules-{i}.md", "\n".join(parts).encode()


def huge_line(rng: random.Random, i: int) -> File:
    text = " ".join(_sentence(rng, 20) for _ in range(2_000)).replace(". ", " ")
    return f"huge-line-{i}.txt", text.encode()


def deep_nesting(rng: random.Random, i: int) -> File:
    depth = 20_000 if i < len(KINDS) else rng.randrange(500, 20_001)
    tag = rng.choice(["div", "span", "b", "section", "blockquote", "li"])
    page = (
        f"<html><body><p>{_sentence(rng)}</p>"
        + f"<{tag}>" * depth
        + _sentence(rng)
        + f"</{tag}>" * rng.choice([depth, 0])
        + "</body></html>"
    )
    return f"deep-{i}.html", page.encode()


def deep_markdown(rng: random.Random, i: int) -> File:
    depth = rng.randrange(1_000, 10_001)
    marker = rng.choice(["> ", "- ", "* ", "1. "])
    return f"deep-{i}.md", (marker * depth + _sentence(rng) + "\n\n" + _article(rng)).encode()


def broken_html(rng: random.Random, i: int) -> File:
    article = _article(rng).split("\n\n")
    junk = ["<p", "</div></div>", "<a href='", '<img src="x" onerror=', "<<<>>>", "&#xD800;",
            "&#0;", "&bogus;", "<!--", "<![CDATA[", "</html>", "<table><tr>", "<br/>"]  # fmt: skip
    page = "".join(f"<p>{p}</p>{rng.choice(junk)}" for p in article)
    return f"broken-{i}.html", page.encode()


def script_laden_html(rng: random.Random, i: int) -> File:
    script = "<script>var s = '" + "<p>not text</p>" * 500 + "'; while(1){}</script>"
    style = "<style>" + "p{color:red}" * 2_000 + "</style>"
    body = "".join(f"<p>{p}</p>" for p in _article(rng).split("\n\n"))
    return (
        f"scripts-{i}.html",
        f"<html><head>{style}{script}</head><body>{body}{script}</body></html>".encode(),
    )


def escaped_html_in_text(rng: random.Random, i: int) -> File:
    inner = "".join(f"\\u003cp\\u003e{p}\\u003c/p\\u003e" for p in _article(rng).split("\n\n"))
    tail = "\\" * rng.randrange(1, 4) + "\\u{110000}\\x" + "\\u00"
    return f"escaped-{i}.txt", f'render({{"html":"{inner}{tail}'.encode()


def malformed_json(rng: random.Random, i: int) -> File:
    good = json.dumps({"title": "T", "text": _article(rng)})
    return f"malformed-{i}.json", good[: rng.randrange(1, len(good))].encode()


def wrong_shaped_json(rng: random.Random, i: int) -> File:
    shapes = [
        "42",
        '"just a string"',
        "null",
        "[1, 2, 3]",
        '{"title": "No text here"}',
        '{"text": 12345}',
        '{"text": ["a", "list"]}',
        '{"text": {"nested": "object"}}',
        '[{"text": ""}, {"text": null}, 7]',
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 50_000 + "1" + "}" * 50_000,
        '{"text": "dup", "text": "' + _sentence(rng) + '"}',
        '{"title": 1e999, "text": "' + _sentence(rng) + '"}',
    ]
    return f"shapes/shape-{i}.json", shapes[i % len(shapes)].encode()


def malformed_jsonl(rng: random.Random, i: int) -> File:
    lines = [
        json.dumps({"title": f"Record {n}", "text": _article(rng, 2)})
        if rng.random() < 0.5
        else rng.choice(["{", "not json", "[]", '{"text": 5}', "", "   ", "\x00", "null"])
        for n in range(rng.randrange(1, 30))
    ]
    return f"records-{i}.jsonl", "\n".join(lines).encode()


def fake_pdf(rng: random.Random, i: int) -> File:
    return f"fake-{i}.pdf", rng.choice([b"%PDF-1.7\n", b"", b"PK\x03\x04"]) + _article(rng).encode()


def truncated_pdf(rng: random.Random, i: int) -> File:
    pdf = make_pdf([[_sentence(rng)]])
    return f"truncated-{i}.pdf", pdf[: rng.randrange(len(pdf) // 3, len(pdf) - 1)]


def valid_pdf(rng: random.Random, i: int) -> File:
    return f"valid-{i}.pdf", make_pdf([[_sentence(rng)] for _ in range(3)], {"Title": "A PDF"})


def unknown_extension(rng: random.Random, i: int) -> File:
    name = rng.choice(["notes.docx", "data.csv", "run.exe", "README", "archive.tar.gz", "x."])
    return f"unknown/{i}-{name}", _article(rng).encode()


def long_file_name(rng: random.Random, i: int) -> File:
    # 255 bytes is the usual limit for one name; é takes two.
    stem = f"{i}-" + "é" * rng.randrange(50, 120)
    return stem + ".txt", _article(rng).encode()


def non_ascii_file_name(rng: random.Random, i: int) -> File:
    name = rng.choice(
        ["新闻报道", "خبر عاجل", "Ελληνικά", "emoji-📰🔥", "e\u0301te\u0301", "tab\tname", "a b"]
    )
    return f"{name}-{i}.txt", _article(rng).encode()


def undecodable_file_name(rng: random.Random, i: int) -> File:
    # Bytes that are not UTF-8 in the name: os.walk returns them as lone surrogates.
    return f"latin1-name-caf\udce9-{i}.txt", _article(rng).encode()


def deep_sub_folders(rng: random.Random, i: int) -> File:
    folders = "/".join(f"level{n}" for n in range(rng.randrange(5, 40)))
    return f"{folders}/article-{i}.txt", _article(rng).encode()


def carriage_returns(rng: random.Random, i: int) -> File:
    return f"cr-{i}.txt", _article(rng).replace(
        "\n", rng.choice(["\r", "\u2028", "\x85", "\r\r\n"])
    ).encode()


def ordinary_article(rng: random.Random, i: int) -> File:
    return f"ordinary/article-{i}.{rng.choice(['txt', 'md'])}", _article(rng, 8).encode()


#: Every kind, by name: ``kind(rng, i) -> (relative path, bytes)``.
KINDS: dict[str, Callable[[random.Random, int], File]] = {
    kind.__name__: kind
    for kind in (
        binary, image_named_text, empty, whitespace_only, nul_bytes, utf16, utf16_broken, utf8_bom,
        latin1, cp1252, control_characters, mostly_control, bidi, zero_width, lone_surrogates,
        json_surrogate_escapes, no_punctuation, no_spaces, repeated_character, separator_lines,
        huge_line, deep_nesting, deep_markdown, broken_html, script_laden_html,
        escaped_html_in_text, malformed_json, wrong_shaped_json, malformed_jsonl, fake_pdf,
        truncated_pdf, valid_pdf, unknown_extension, long_file_name, non_ascii_file_name,
        undecodable_file_name, deep_sub_folders, carriage_returns, ordinary_article,
    )
}  # fmt: skip


def write_corpus(folder: Path, count: int = 1_000, seed: int = 0) -> dict[str, str]:
    """Write ``count`` hostile files under ``folder``, kinds in turn.

    Args:
        folder: Where to write (created if missing).
        count: How many files; every kind is present once ``count >= len(KINDS)``.
        seed: The same seed writes the same files.

    Returns:
        The kind of each file written, by path relative to ``folder``.
    """
    rng = random.Random(seed)
    kinds = list(KINDS.items())
    written: dict[str, str] = {}
    for i in range(count):
        name, kind = kinds[i % len(kinds)]
        relative, data = kind(rng, i)
        # A lone surrogate in a name is written as the byte it escapes (os.fsencode).
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written[relative] = name
    return written
