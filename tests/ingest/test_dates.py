"""The publication day of a document: read where the source names it, never guessed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.dates import iso_date, text_date
from qa.ingest import load_file


@pytest.mark.parametrize(
    ("written", "day"),
    [
        ("2019-02-20", "2019-02-20"),
        ("2019-02-20T23:30:00-05:00", "2019-02-20"),  # the day as written, zone not applied
        ("2018/6/1", "2018-06-01"),
        ("Tue, 12 Jun 2018 10:00:00 GMT", "2018-06-12"),
        ("June 12, 2018", "2018-06-12"),
        ("12th of June 2018", "2018-06-12"),
        ("Sept. 3, 2004", "2004-09-03"),
        ("2020", None),  # a year, not a day
        ("May 2020", None),
        ("06/12/2018", None),  # June or December?
        ("2019-02-30", None),  # no such day
        ("12 June 2018 or 13 June 2018", None),  # two days
        ("", None),
        (None, None),
    ],
)
def test_iso_date(written: str | None, day: str | None) -> None:
    assert iso_date(written) == day


@pytest.mark.parametrize(
    ("text", "day"),
    [
        ("WASHINGTON, June 12, 2018 — The talks went on.\n\nMore.", "2018-06-12"),
        ("LONDON (Reuters), 2018-06-12 - Shares fell.", "2018-06-12"),
        ("Title\n\nPublished: 12 June 2018 10:32 GMT\n\nBody on 1 May 2017.", "2018-06-12"),
        ("Title\n\nBy Jane Doe\n\nJune 12, 2018\n\nText.", "2018-06-12"),
        # An event in a headline or a sentence is not the article's day.
        ("Bomb hit London on 7 July 2005\n\nBody.", None),
        ("The bank said on Monday, June 12, 2018 - that rates rose.", None),
        ("Title\n\nBody.\n\nMore.\n\nMore.\n\nPublished 12 June 2018", None),  # not at the top
        ("Title\n\nPublished 12 June 2018\n\nUpdated 13 June 2018\n\nBody", None),  # two days
    ],
)
def test_text_date_reads_datelines_only(text: str, day: str | None) -> None:
    assert text_date(text) == day


def test_ingested_documents_carry_their_iso_day(tmp_path: Path) -> None:
    (tmp_path / "world").mkdir()
    (tmp_path / "world" / "talks.txt").write_text(
        "Talks resume\n\nHANOI, Feb. 27, 2019 — The leaders met again.\n", encoding="utf-8"
    )
    (tmp_path / "plain.txt").write_text(
        "No date here\n\nJust a story from 7 July 2005.\n", encoding="utf-8"
    )
    records = [
        {"text": "One.", "date": "Wed, 20 Feb 2019 10:00:00 GMT"},
        {"text": "Two.", "date": "2019-02-21"},
        {"text": "Three.", "date": "03/04/2019"},
    ]
    (tmp_path / "feed.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records), encoding="utf-8"
    )

    [talks] = load_file(tmp_path / "world" / "talks.txt", tmp_path)
    assert talks.metadata["date"] == "2019-02-27" and "date_source" not in talks.metadata
    [plain] = load_file(tmp_path / "plain.txt", tmp_path)
    assert "date" not in plain.metadata
    one, two, three = load_file(tmp_path / "feed.jsonl", tmp_path)
    assert one.metadata["date"] == "2019-02-20"
    assert one.metadata["date_source"] == "Wed, 20 Feb 2019 10:00:00 GMT"
    assert two.metadata["date"] == "2019-02-21" and "date_source" not in two.metadata
    assert "date" not in three.metadata and three.metadata["date_source"] == "03/04/2019"


def test_html_meta_date_tags(tmp_path: Path) -> None:
    page = '<meta name="date" content="2004-12-01"><h1>Rates</h1><p>Rates rose.</p>'
    (tmp_path / "a.html").write_text(page, encoding="utf-8")
    [doc] = load_file(tmp_path / "a.html", tmp_path)
    assert doc.metadata["date"] == "2004-12-01"
