"""worker.ops.imports: an import file's lines, each either a valid change or a bad line with its
number; and the import command's progress display."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.classify.test_manual import change_fields
from worker.classify.manual import manual_change
from worker.events.schemas import IMPORT, validator
from worker.ops.imports import BadLine, GoodLine, ImportFileError, ImportFormat, Reader, detect_format
from worker.ops.manual import Progress

COLUMNS = ["address", "account", "subaccount", "sender", "channel", "category", "action", "note"]

#: Lines that can never be a change, whatever the header: no account, both narrowings, bad values.
BAD_ROWS = [
    {"address": "+1"},
    {"address": "+1", "account": "a", "subaccount": "s", "sender": "x"},
    {"address": "+1", "account": "a", "category": "promo"},
    {"address": "+1", "account": "a", "action": "stop"},
]


def _csv_line(cells: list[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerow(cells)
    return out.getvalue()


@st.composite
def import_file(draw: st.DrawFn) -> tuple[list[tuple[int, dict[str, str | None] | None]], list[str], str]:
    """(expected per data line: its line number and fields, None for a bad one; the header's
    column names as written; the separator)."""
    rows = draw(
        st.lists(st.one_of(change_fields(), st.sampled_from(BAD_ROWS).map(lambda r: None)), max_size=12)
    )
    order = draw(st.permutations(COLUMNS))
    header = [draw(st.sampled_from([name, name.upper(), name.title()])) for name in order]
    return [(i, row) for i, row in enumerate(rows)], header, draw(st.sampled_from([",", ";", "\t"]))


@given(import_file(), st.integers(0, 3))
def test_csv_lines_are_read_with_their_numbers(
    spec: tuple[list[tuple[int, dict[str, str | None] | None]], list[str], str], blanks: int
) -> None:
    rows, header, delimiter = spec
    lines = ["\n"] * blanks + [_csv_line(header, delimiter)]
    expected: list[GoodLine | BadLine] = []
    bad_cycle = iter(BAD_ROWS * (len(rows) + 1))
    for _, fields in rows:
        used = fields if fields is not None else next(bad_cycle)
        lines.append(_csv_line([used.get(name.lower()) or "" for name in header], delimiter))
        number = len(lines)
        if fields is None:
            expected.append(BadLine(number, ""))
        else:
            expected.append(GoodLine(number, manual_change(fields)))
        if len(lines) % 3 == 0:
            lines.append("\r\n")  # blank lines are skipped, and counted
    got = list(Reader(ImportFormat.CSV).read(lines))
    assert [type(item) for item in got] == [type(item) for item in expected]
    assert [item.line for item in got] == [item.line for item in expected]
    assert [item.change for item in got if isinstance(item, GoodLine)] == [
        item.change for item in expected if isinstance(item, GoodLine)
    ]
    assert all(item.problem for item in got if isinstance(item, BadLine))


@given(st.lists(st.one_of(change_fields(), st.sampled_from(BAD_ROWS).map(lambda r: None)), max_size=12))
def test_json_lines_are_read_with_their_numbers(rows: list[dict[str, str | None] | None]) -> None:
    lines: list[str] = []
    expected: list[tuple[int, object]] = []
    for index, fields in enumerate(rows):
        doc = fields if fields is not None else BAD_ROWS[index % len(BAD_ROWS)]
        lines.append(orjson.dumps(doc).decode() + "\n")
        expected.append((len(lines), None if fields is None else manual_change(fields)))
        if fields is not None:  # the documented schema accepts what the reader accepts (lower case)
            canonical = {k: v.lower() if k in ("action", "category") and v else v for k, v in doc.items()}
            assert list(validator(IMPORT).iter_errors(canonical)) == []
        else:
            assert list(validator(IMPORT).iter_errors(doc)) != []
        if index % 2:
            lines.append("   \n")
    got = list(Reader(ImportFormat.JSON_LINES).read(lines))
    assert [(item.line, item.change if isinstance(item, GoodLine) else None) for item in got] == expected


def test_bad_csv_lines_say_why_and_do_not_spoil_the_next() -> None:
    lines = [
        "address,account,channel\n",
        '"+1,acme,sms\n',  # unterminated quote: this line only
        "+2,acme,sms,extra\n",
        "+3,acme,sms\n",
        "+4,,sms\n",
        "+5,acme,sms\x07\n",
    ]
    got = list(Reader(ImportFormat.CSV).read(lines))
    assert [(type(item).__name__, item.line) for item in got] == [
        ("BadLine", 2),
        ("BadLine", 3),
        ("GoodLine", 4),
        ("BadLine", 5),
        ("BadLine", 6),
    ]
    problems = [item.problem for item in got if isinstance(item, BadLine)]
    assert problems[0].startswith("not CSV")
    assert problems[1] == "4 cells, the header has 3"
    assert problems[2] == "account is missing"
    assert "control character" in problems[3]


def test_bad_json_lines_say_why() -> None:
    lines = ['{"address": "+1", "account": 7}\n', "[1]\n", "{nope\n", '{"address": "+1", "account": "a"}\n']
    got = list(Reader(ImportFormat.JSON_LINES).read(lines))
    assert [item.problem if isinstance(item, BadLine) else "ok" for item in got] == [
        "account must be a string, not int",
        "not a JSON object but list",
        got[2].problem if isinstance(got[2], BadLine) else "",
        "ok",
    ]
    assert isinstance(got[2], BadLine)
    assert got[2].problem.startswith("not JSON")


def test_unknown_columns_are_ignored_and_named_and_aliases_are_accepted() -> None:
    reader = Reader(ImportFormat.CSV)
    got = list(reader.read(["\ufeffPhone Number,Address,Account_ID,Date Added\n", "x,+1,acme,2026-01-01\n"]))
    assert isinstance(got[0], GoodLine)
    assert got[0].change.scope.account_id == "acme"
    assert reader.ignored == {"Phone Number", "Date Added"}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("phone,account\n", "needs an address and an account column"),
        ("address,sender,Address,account\n", "column 'address' is in the header twice"),
        ('"address,account\n', "the header is not CSV"),
    ],
)
def test_an_unusable_header_refuses_the_whole_file(header: str, message: str) -> None:
    with pytest.raises(ImportFileError, match=message):
        Reader(ImportFormat.CSV).check_header(["\n", header, "+1,acme\n"])


def test_an_empty_file_has_no_lines() -> None:
    assert list(Reader(ImportFormat.CSV).read(["\n", "  \n"])) == []
    assert list(Reader(ImportFormat.JSON_LINES).read([])) == []


@pytest.mark.parametrize(
    ("name", "head", "kind"),
    [
        ("list.csv", '{"address": 1}', ImportFormat.CSV),
        ("LIST.JSONL", "address,account", ImportFormat.JSON_LINES),
        ("x.ndjson", "", ImportFormat.JSON_LINES),
        ("export.txt", '\n  {"address": "+1"}', ImportFormat.JSON_LINES),
        ("export", "address;account\n", ImportFormat.CSV),
        ("export", "", ImportFormat.CSV),
    ],
)
def test_the_format_comes_from_the_extension_else_the_first_line(
    name: str, head: str, kind: ImportFormat
) -> None:
    assert detect_format(name, head) is kind


def test_progress_writes_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(out, 100, every=0.0)
    progress.show(50)
    progress.show(100)
    progress.finish()
    assert out.getvalue() == "import: 50 of 100 lines read\nimport: 100 of 100 lines read\n"


def test_progress_draws_a_bar_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    progress = Progress(out, 4)
    progress.show(4)
    progress.finish()
    assert out.getvalue() == "\rimport [" + "#" * 30 + "] 4/4 lines (100%)\n"
