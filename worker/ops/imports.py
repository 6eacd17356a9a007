"""Reading an ``optout import`` file: a provider's exported blocklist or a CRM's do-not-contact list.

Two formats, told apart by the file's extension and, failing that, by its first non-blank line:

* CSV with a header line (``.csv``; ``,`` or ``;`` or tab separated, UTF-8 with or without a BOM):
  the columns :data:`worker.classify.manual.FIELDS`, in any order and any case, ``address`` and
  ``account`` required. One record per line: a quoted cell may hold the separator or ``""``, not a
  line break, so a stray quote spoils its own line only and every line number is exact. Columns
  it does not know are ignored and named in the report (:attr:`Reader.ignored`): exports carry
  extra columns. A misspelt one (``sendr``) would widen the scope of its lines, which is why the
  report names them and ``--dry-run`` shows it before anything is produced.
* JSON lines (``.jsonl``, ``.ndjson``, ``.json``): one object per line with the same fields
  (``schemas/blocklist-import.v1.json``), strings or null.

Every line is checked on its own: a line is either a valid change or a :class:`BadLine` with its
line number (the file's physical line, as an editor shows it) and one phrase saying what is
wrong. Pure: the caller opens the file and passes its lines.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum

import orjson

from worker.classify.manual import ALIASES, FIELDS, ManualChange, ManualChangeError, manual_change
from worker.events.address import Countries


class ImportFormat(StrEnum):
    CSV = "csv"
    JSON_LINES = "jsonl"


class ImportFileError(ValueError):
    """The file as a whole cannot be read (no header, no address column): one line, nothing produced."""


@dataclass(frozen=True, slots=True)
class GoodLine:
    line: int
    change: ManualChange


@dataclass(frozen=True, slots=True)
class BadLine:
    line: int
    problem: str


_EXTENSIONS = {
    ".csv": ImportFormat.CSV,
    ".tsv": ImportFormat.CSV,
    ".jsonl": ImportFormat.JSON_LINES,
    ".ndjson": ImportFormat.JSON_LINES,
    ".json": ImportFormat.JSON_LINES,
}


def detect_format(name: str, head: str) -> ImportFormat:
    """By extension; otherwise a first non-blank line that starts with ``{`` is JSON lines, anything
    else CSV (whose header a check then requires)."""
    dot = name.rfind(".")
    if dot >= 0 and (known := _EXTENSIONS.get(name[dot:].lower())) is not None:
        return known
    for line in head.splitlines():
        if line.strip():
            return ImportFormat.JSON_LINES if line.lstrip("\ufeff \t").startswith("{") else ImportFormat.CSV
    return ImportFormat.CSV


class Reader:
    """Turns the lines of an import file into :class:`GoodLine` / :class:`BadLine` items.

    ``position`` is the last physical line read (for a progress display); ``ignored`` the names of
    the columns or fields that were not used.
    """

    def __init__(self, kind: ImportFormat, countries: Countries | None = None) -> None:
        self.kind = kind
        self.countries = countries or Countries()
        self.position = 0
        self.ignored: set[str] = set()

    def read(self, lines: Iterable[str]) -> Iterator[GoodLine | BadLine]:
        if self.kind is ImportFormat.CSV:
            return self._csv(lines)
        return self._json_lines(lines)

    def check_header(self, lines: Iterable[str]) -> None:
        """Raise :class:`ImportFileError` now if the file as a whole is unusable (a CSV without the
        required columns), before anything is produced."""
        if self.kind is ImportFormat.CSV:
            Reader(self.kind)._header(iter(lines))

    def _header(self, source: Iterator[str]) -> tuple[list[str], str] | None:
        """The CSV header (the first non-blank line): the field names and the separator."""
        for first in source:
            self.position += 1
            if first.strip():
                break
        else:
            return None
        delimiter = _delimiter(first)
        try:
            header = _row(first, delimiter)
        except csv.Error as exc:
            raise ImportFileError(f"line {self.position}: the header is not CSV: {exc}") from None
        names = [_field_name(name) for name in header]
        if "address" not in names or "account" not in names:
            raise ImportFileError(
                f"line {self.position}: the header {_short(first)!r} needs an address and an account "
                f"column (the columns: {', '.join(FIELDS)})"
            )
        duplicated = sorted({name for name in names if names.count(name) > 1 and name in FIELDS})
        if duplicated:
            raise ImportFileError(f"line {self.position}: column {duplicated[0]!r} is in the header twice")
        unknown = (name for name in header if _field_name(name) not in FIELDS)
        self.ignored.update(name.strip().lstrip("\ufeff") for name in unknown)
        return names, delimiter

    def _csv(self, lines: Iterable[str]) -> Iterator[GoodLine | BadLine]:
        source = iter(lines)
        header = self._header(source)
        if header is None:
            return
        names, delimiter = header
        for text in source:
            self.position += 1
            if not text.strip():
                continue
            try:
                row = _row(text, delimiter)
            except csv.Error as exc:  # an unterminated quote, a quote inside a quoted cell
                yield BadLine(self.position, f"not CSV: {exc}")
                continue
            if len(row) > len(names):
                yield BadLine(self.position, f"{len(row)} cells, the header has {len(names)}")
                continue
            fields = {name: cell for name, cell in zip(names, row, strict=False) if name in FIELDS}
            yield _checked(self.position, fields, self.countries)

    def _json_lines(self, lines: Iterable[str]) -> Iterator[GoodLine | BadLine]:
        for text in lines:
            self.position += 1
            line = self.position
            stripped = text.strip().lstrip("\ufeff")
            if not stripped:
                continue
            try:
                doc = orjson.loads(stripped.encode("utf-8", "surrogateescape"))
            except orjson.JSONDecodeError as exc:
                yield BadLine(line, f"not JSON: {exc}")
                continue
            if not isinstance(doc, dict):
                yield BadLine(line, f"not a JSON object but {type(doc).__name__}")
                continue
            fields: dict[str, str | None] = {}
            problem = None
            for raw_name, value in doc.items():
                name = _field_name(raw_name)
                if name not in FIELDS:
                    self.ignored.add(raw_name)
                elif value is not None and not isinstance(value, str):
                    problem = f"{name} must be a string, not {type(value).__name__}"
                    break
                else:
                    fields[name] = value
            yield BadLine(line, problem) if problem is not None else _checked(line, fields, self.countries)


def _checked(line: int, fields: Mapping[str, str | None], countries: Countries) -> GoodLine | BadLine:
    try:
        return GoodLine(line, manual_change(fields, countries))
    except ManualChangeError as exc:
        return BadLine(line, str(exc))


def _field_name(name: str) -> str:
    key = name.strip().lstrip("\ufeff").lower().replace(" ", "_").replace("-", "_")
    return ALIASES.get(key, key)


def _row(text: str, delimiter: str) -> list[str]:
    """One CSV record of one line. Strict: a stray quote is this line's error, not a cell that
    swallows the lines after it."""
    return next(csv.reader([text], delimiter=delimiter, strict=True))


def _delimiter(header: str) -> str:
    """Comma, semicolon (spreadsheets in much of Europe) or tab: whichever the header has most of."""
    return max((",", ";", "\t"), key=header.count)


def _short(text: str) -> str:
    text = text.rstrip("\r\n")
    return text if len(text) <= 80 else text[:79] + "…"
