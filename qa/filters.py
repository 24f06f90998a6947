"""Metadata filters: restrict a question or a search to some documents of the index.

A :class:`Filter` holds equality conditions on a document's fields and a range of days::

    Filter.parse(where=["folder=business"], since="2005-01-01")
    Filter.parse(where="folder=business; date>=2005-01-01; date<=2005-12-31")

A document's fields are its metadata (``qa doc`` shows them) and four more derived from the
document itself, so an index built before they existed filters the same way without a rebuild:

* ``folder``: the folder of its file relative to the corpus root (``business`` for
  ``business/001.txt``; ``""`` at the root). ``folder=business`` also matches the folders
  below it (``business/2005``); compared without regard to case.
* ``path``: the source file relative to the corpus root; ``title``: the document's title.
* ``date``: its day as ``YYYY-MM-DD`` (``qa.dates.iso_date`` of ``metadata["date"]``, which
  also reads the dates older indexes kept as the source wrote them).

Other keys compare the metadata value exactly (after trimming spaces). ``since`` and ``until``
are inclusive days; a document without a date fails either. Retrieval applies the filter
inside the search (``qa.retrieval.Retriever.search``), so the ``k`` passages returned are the
best ``k`` of the documents that pass, never fewer because others were ranked above them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qa.dates import iso_date

if TYPE_CHECKING:
    from qa.types import Document, DocumentRow

#: Fields every document has (derived from it), beside its metadata keys.
DERIVED_FIELDS = ("folder", "path", "title", "date")
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: A condition of a ``where`` string or item: ``key=value``, ``date>=day``, ``date<=day``.
_CONDITION = re.compile(r"\s*(?P<key>[^=<>]*?)\s*(?P<op>>=|<=|=|<|>)\s*(?P<value>.*?)\s*")


@dataclass(frozen=True)
class Filter:
    """Which documents a question or search may use.

    Attributes:
        where: Equality conditions, field name to value (see the module docstring for the
            fields); all must hold. Names are case-insensitive.
        since: First day allowed, ``YYYY-MM-DD`` (inclusive), or ``None``.
        until: Last day allowed, ``YYYY-MM-DD`` (inclusive), or ``None``.

    Raises:
        ValueError: On construction, for a field name or value that cannot be matched, a day
            that is not a real ``YYYY-MM-DD`` date, or ``since`` after ``until``.
    """

    where: Mapping[str, str] = field(default_factory=dict, hash=False)
    since: str | None = None
    until: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.where, Mapping):
            raise ValueError(
                f"where must map field names to values, got {type(self.where).__name__}"
            )
        where: dict[str, str] = {}
        for key, value in self.where.items():
            name = _check_key(key)
            if not isinstance(value, str):
                raise ValueError(f"the value of {name} must be text, got {type(value).__name__}")
            value = value.strip()
            if name == "folder":
                value = value.strip("/").lower()
            elif name == "date":
                value = _check_day(value, "date")
            if not value and name != "folder":
                raise ValueError(f"{name}= needs a value (e.g. {name}=...)")
            if name in where and where[name] != value:
                raise ValueError(f"{name} is given twice ({where[name]!r} and {value!r})")
            where[name] = value
        since = None if self.since is None else _check_day(self.since, "since")
        until = None if self.until is None else _check_day(self.until, "until")
        if since and until and since > until:
            raise ValueError(f"since {since} is after until {until}: no day is in that range")
        object.__setattr__(self, "where", where)
        object.__setattr__(self, "since", since)
        object.__setattr__(self, "until", until)

    @classmethod
    def parse(
        cls,
        where: str | Sequence[str] | None = None,
        since: str | None = None,
        until: str | None = None,
    ) -> Filter:
        """A filter from the words a user typed (CLI options, web fields, API strings).

        Args:
            where: Conditions ``KEY=VALUE``, as a list (one per item, as ``--where`` gives
                them) or one string separated by ``;``. ``date>=DAY`` and ``date<=DAY`` are
                the same as ``since`` and ``until``. Empty items are ignored.
            since: First day, ``YYYY-MM-DD``; empty means none.
            until: Last day, ``YYYY-MM-DD``; empty means none.

        Raises:
            ValueError: Saying which condition or day is refused and what is expected.
        """
        if where is None:
            items: list[str] = []
        elif isinstance(where, str):
            items = where.split(";")
        elif isinstance(where, Sequence) and all(isinstance(w, str) for w in where):
            items = list(where)
        else:
            raise ValueError(f"where must be text or a list of texts, got {where!r}")
        conditions: dict[str, str] = {}
        days = {"since": _blank_none(since, "since"), "until": _blank_none(until, "until")}
        for item in items:
            if not item.strip():
                continue
            match = _CONDITION.fullmatch(item)
            if match is None or not match["key"]:
                raise ValueError(
                    f"a condition must be KEY=VALUE (e.g. folder=business) or date>=YYYY-MM-DD, "
                    f"got {item.strip()!r}"
                )
            key, op, value = match["key"], match["op"], match["value"]
            if op in ("<", ">"):
                raise ValueError(f"{item.strip()!r}: use >= or <= (days are inclusive)")
            if op == "=":
                name = _check_key(key)
                if name in conditions and conditions[name] != value:
                    raise ValueError(f"{name} is given twice ({conditions[name]!r} and {value!r})")
                conditions[name] = value
                continue
            if key.lower() != "date":
                raise ValueError(f"{item.strip()!r}: only date can be compared with {op}")
            bound = "since" if op == ">=" else "until"
            value = _check_day(value, f"date{op}")
            if days[bound] is not None and days[bound] != value:
                raise ValueError(f"{bound} is given twice ({days[bound]} and {value})")
            days[bound] = value
        return cls(conditions, days["since"], days["until"])

    def __bool__(self) -> bool:
        """Whether the filter restricts anything (``Filter()`` lets every document through)."""
        return bool(self.where or self.since or self.until)

    def matches(self, doc: Document) -> bool:
        """Whether ``doc`` passes every condition."""
        for name, wanted in self.where.items():
            if name == "folder":
                folder = document_folder(doc).lower()
                if wanted and folder != wanted and not folder.startswith(wanted + "/"):
                    return False
                if not wanted and folder:
                    return False
            elif name == "path":
                if doc.path != wanted:
                    return False
            elif name == "title":
                if doc.title.strip() != wanted:
                    return False
            elif name == "date":
                if document_date(doc) != wanted:
                    return False
            elif doc.metadata.get(name, "").strip() != wanted:
                return False
        if self.since or self.until:
            day = document_date(doc)
            if day is None:
                return False
            if (self.since and day < self.since) or (self.until and day > self.until):
                return False
        return True

    def describe(self) -> str:
        """The filter in words, as the faces say it: ``folder business, since 2005-01-01``."""
        parts = [f"{name} {value or '(corpus root)'}" for name, value in self.where.items()]
        if self.since:
            parts.append(f"since {self.since}")
        if self.until:
            parts.append(f"until {self.until}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, object]:
        """The filter as JSON-ready data (``qa search --json`` and ``qa ask --json``)."""
        return {"where": dict(self.where), "since": self.since, "until": self.until}


def check_filter(value: object) -> Filter | None:
    """``value`` if it is a :class:`Filter` or ``None``; else ``ValueError`` saying how to make one.

    ``QA.search`` and ``QA.ask`` take nothing else, so a dict or a string is refused rather
    than read one way here and another there.
    """
    if value is None or isinstance(value, Filter):
        return value
    raise ValueError(
        "the filter must be a qa.filters.Filter, e.g. Filter.parse(where=['folder=business'], "
        f"since='2005-01-01'), got {type(value).__name__}"
    )


def document_folder(doc: Document | DocumentRow) -> str:
    """The folder of ``doc``'s file relative to the corpus root (``""`` at the root)."""
    return doc.path.rpartition("/")[0]


def document_date(doc: Document) -> str | None:
    """``doc``'s day as ``YYYY-MM-DD``, or ``None`` if its metadata names no single day."""
    return iso_date(doc.metadata.get("date"))


def folders(documents: Iterable[Document | DocumentRow]) -> list[str]:
    """The folders holding documents (each one and those above it), sorted; the root not."""
    found: set[str] = set()
    for doc in documents:
        folder = document_folder(doc)
        while folder:
            found.add(folder)
            folder = folder.rpartition("/")[0]
    return sorted(found, key=str.lower)


def _check_key(key: object) -> str:
    if not isinstance(key, str) or not _KEY.fullmatch(key.strip()):
        raise ValueError(
            f"{key!r} is not a field name: use folder, path, title, date or a metadata key "
            "(letters, digits, _ . -)"
        )
    return key.strip().lower()


def _check_day(value: object, name: str) -> str:
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not _ISO_DAY.fullmatch(text) or iso_date(text) is None:
        raise ValueError(f"{name} must be a date YYYY-MM-DD, got {value!r}")
    return text


def _blank_none(value: str | None, name: str) -> str | None:
    """A day given as text, ``None`` when left empty (a blank form field)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a date YYYY-MM-DD, got {value!r}")
    return value.strip() or None
