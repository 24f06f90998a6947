"""Calendar days named in sources, as ISO ``YYYY-MM-DD``, read only where they are unambiguous.

Ingestion stores a document's day in ``Document.metadata["date"]`` (``qa.ingest``) and filters
compare days (``qa.filters``); both read dates with these functions, so an index built before
dates were normalised (its ``date`` values as the source wrote them) filters the same way.

Nothing is guessed: ``06/12/2018`` (June or December?), ``2020`` (which day?) and a text with
two different dates near its top name no day, and give ``None``.
"""

from __future__ import annotations

import re
from datetime import date

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTH = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_WEEKDAY = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\.?,?\s+"
#: Every way of writing a day that names it unambiguously: year first with digits (ISO 8601 and
#: its slashed or dotted forms), or the month as a word (``12 June 2018``, ``June 12, 2018``).
_DATE = re.compile(
    rf"(?<![\w-])(?:"
    rf"(?P<y1>\d{{4}})(?P<sep>[-/.])(?P<m1>\d{{1,2}})(?P=sep)(?P<d1>\d{{1,2}})(?![\d])"
    rf"|(?:{_WEEKDAY})?(?P<d2>{_DAY})\s+(?:of\s+)?(?P<m2>{_MONTH}),?\s+(?P<y2>\d{{4}})(?!\d)"
    rf"|(?:{_WEEKDAY})?(?P<m3>{_MONTH})\s+(?P<d3>{_DAY}),?\s+(?P<y3>\d{{4}})(?!\d)"
    rf")",
    re.IGNORECASE,
)
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: How a dateline, byline or "published" line may surround its date (checked on whole lines).
_TIME = r"(?:\s*(?:,|at|-|\|)?\s*\d{1,2}[:.]\d{2}(?:[:.]\d{2})?\s*(?:[ap]\.?m\.?)?)?"
_ZONE = r"(?:\s*\(?(?:gmt|utc|bst|cet|cest|[a-z]{2,4}t|[+-]\d{2}:?\d{2})\)?)?"
_STAMP = re.compile(
    r"(?:(?:first\s+)?(?:published|posted|updated|last\s+updated|dated?|filed)\s*(?:on\s*)?:?\s*)?"
    rf"(?P<date>.{{6,40}}?){_TIME}{_ZONE}\s*\.?",
    re.IGNORECASE,
)
#: A news dateline opening the first paragraph: ``WASHINGTON, June 12, 2018 —``.
_DATELINE = re.compile(
    r"[A-Z][A-Za-z.'’-]*(?:\s[A-Z][A-Za-z.'’-]*){0,3}(?:\s*\([^()]{1,30}\))?,"
    r"\s*(?P<date>[^—–:]{6,40}?)\s*[—–:-]\s"
)
#: The top of a text where a dateline or a "published" line stands.
_HEAD_PARAGRAPHS = 4
_SHORT_PARAGRAPH = 80


def iso_date(value: str | None) -> str | None:
    """The one day ``value`` names, as ``YYYY-MM-DD``; ``None`` if it names none or several.

    Reads ISO 8601 (``2019-02-20``, ``2019-02-20T10:00:00Z``; the day as written, time zones
    are not converted), ``2019/02/20``, and dates with the month as a word (``20 February
    2019``, ``Wed, 20 Feb 2019 10:00:00 GMT``, ``February 20, 2019``). All-digit dates that do
    not start with the year (``02/03/2019``) are ambiguous and are not read.
    """
    if not value:
        return None
    value = value.strip()
    if _ISO_DAY.fullmatch(value):
        return value if _valid(value) else None
    found = {day for day in map(_day, _DATE.finditer(value)) if day}
    return found.pop() if len(found) == 1 else None


def text_date(text: str) -> str | None:
    """The day a text's own dateline or "published" line gives, or ``None``.

    Only the top of the text is read (its first few paragraphs): a short paragraph that is a
    date and nothing else but a "Published"/"Updated" word and a time (``Published: 12 June
    2018 10:32 GMT``), or a dateline opening the first paragraph (``WASHINGTON, June 12, 2018
    — ...``). Dates elsewhere (in a headline, a quote, the story itself) are events, not the
    article's day, and are never read; two different days at the top give ``None``.
    """
    days: set[str] = set()
    paragraphs = [p.strip() for p in text.split("\n\n", _HEAD_PARAGRAPHS)[:_HEAD_PARAGRAPHS]]
    for number, paragraph in enumerate(paragraphs):
        candidates = []
        if len(paragraph) <= _SHORT_PARAGRAPH and (stamp := _STAMP.fullmatch(paragraph)):
            candidates.append(stamp.group("date"))
        if number < 2 and (dateline := _DATELINE.match(paragraph)):
            candidates.append(dateline.group("date"))
        for candidate in candidates:
            match = _DATE.fullmatch(candidate.strip(" ,"))
            if match and (day := _day(match)):
                days.add(day)
    return days.pop() if len(days) == 1 else None


def _day(match: re.Match[str]) -> str | None:
    groups = match.groupdict()
    for n in "123":
        year, month, day = groups[f"y{n}"], groups[f"m{n}"], groups[f"d{n}"]
        if year is None:
            continue
        if not month.isdigit():
            month = str(_MONTHS[month.lower().rstrip(".")])
        text = f"{year}-{int(month):02d}-{int(day.rstrip('stndrh')):02d}"
        return text if _valid(text) else None
    return None


def _valid(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True
