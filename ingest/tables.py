"""Tables -> rows read as facts: CSV files here, and the sheets of workbooks (``ingest.office``).

A row on its own ("BIOCAT, Spain") means little to a search or to a reader of a citation, so each
row is written with its header's names: ``Partner: BIOCAT; Country: Spain``. Consecutive rows are
grouped into sections of bounded size, each placed by its spreadsheet row numbers (the header is
row 1, as Excel shows it), so a citation reads "Partners, sheet Partners, rows 2-11".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from openpyxl.utils import get_column_letter

from ingest.loaders import (
    DocumentStream,
    Limits,
    LoadError,
    Section,
    _decode,
    _normalise,
    _short,
    _stream,
    _with_text,
)

ROWS_CHARS = 1_500  # a section holds consecutive rows up to about this many characters
ROWS_MAX = 50  # ... or this many rows, so a citation's "rows 2-51" stays a place one can look at


def row_sections(
    rows: Iterable[Sequence[object]], limits: Limits, sheet: str | None = None
) -> Iterator[Section]:
    """Sections of facts from ``rows`` (row 1 first, empty rows included, so numbers stay
    right). The first non-empty row is the header; a cell under no header is named by its
    column ("Column C"); empty cells and rows say nothing. A header alone gives no section."""
    header: list[str] | None = None
    lines: list[str] = []
    first = last = size = 0
    for number, row in enumerate(rows, start=1):
        limits.check_time()  # a sheet of a million empty rows gives no section to check it between
        cells = [_cell_text(value) for value in row]
        if not any(cells):
            continue
        if header is None:
            header = cells
            continue
        line = "; ".join(f"{_column_name(header, i)}: {cell}" for i, cell in enumerate(cells) if cell)
        if lines and (size + len(line) > ROWS_CHARS or len(lines) >= ROWS_MAX):
            yield _rows_section(lines, first, last, sheet)
            lines, size = [], 0
        if not lines:
            first = number
        lines.append(line)
        size, last = size + len(line) + 1, number
    if lines:
        yield _rows_section(lines, first, last, sheet)


def _cell_text(value: object) -> str:
    """A cell as a person reads it: 2024 not 2024.0, a date without midnight, one line."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, dt.datetime) and value.time() == dt.time():
        value = value.date()
    return " ".join(str(value).split())


def _column_name(header: list[str], index: int) -> str:
    return (header[index] if index < len(header) else "") or f"Column {get_column_letter(index + 1)}"


def _rows_section(lines: list[str], first: int, last: int, sheet: str | None) -> Section:
    rows = f"rows {first}-{last}" if last > first else f"row {first}"
    return Section(
        text=_normalise("\n".join(lines)), heading=sheet, place=f"sheet {sheet}, {rows}" if sheet else rows
    )


def load_csv(path: Path, raw: bytes, limits: Limits) -> DocumentStream:
    """A CSV file as one sheet of facts. Decoding is the text loader's (encodings detected,
    binary content refused); the delimiter is sniffed: whichever of comma, semicolon and tab the
    first line holds most of (``csv.Sniffer`` misreads a quoted field holding the delimiter)."""
    text = _decode(raw)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = max(",;\t", key=first_line.count)  # none at all: a comma, for one column
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return _stream(path.stem, _with_text(_csv_rows(rows, limits)), limits)


def _csv_rows(rows: Iterator[list[str]], limits: Limits) -> Iterator[Section]:
    try:
        yield from row_sections(rows, limits)
    except csv.Error as exc:  # e.g. a field over the csv module's 131,072-character limit
        raise LoadError(f"corrupt CSV: {_short(exc)}") from None
