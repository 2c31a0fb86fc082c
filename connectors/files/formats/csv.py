"""CSV files: rows as dicts keyed by the header (or `names`), and the CSV file format for `FileSink`.

Reading is line-oriented (Beam's ``splittable=True``: every line is one record), so CSV files split by byte
range, compress, resume and route bad lines exactly like text. A line whose field count differs from the
header's, an unterminated quote (multi-line records are not supported) or a failing converter is a bad record
with its line number. Blank lines are skipped (pandas' ``skip_blank_lines``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

from millstream.connectors.files.filesystem import open_input
from millstream.connectors.files.sink import TextFormat
from millstream.connectors.files.source import LineDecoder
from millstream.engine.model.portable import has_bytes, portable


class CsvDialect:
    """The csv module's format parameters, as given to ReadFromCsv/WriteToCsv (pandas' names)."""

    def __init__(
        self,
        sep: str = ",",
        quotechar: str = '"',
        escapechar: str | None = None,
        doublequote: bool = True,
        lineterminator: str = "\n",
    ) -> None:
        if len(sep) != 1:
            raise ValueError(f"sep/delimiter must be one character, got {sep!r}")
        self.params: dict[str, Any] = {
            "delimiter": sep,
            "quotechar": quotechar,
            "escapechar": escapechar,
            "doublequote": doublequote,
            "lineterminator": lineterminator,
        }


def read_header(path: str, compression: str, skiprows: int, dialect: CsvDialect, encoding: str) -> list[str]:
    """The column names in the first line after `skiprows` lines of a file ([] for an empty file)."""
    fh, raw = open_input(path, compression)
    try:
        for _ in range(skiprows):
            if not fh.readline():
                return []
        line = fh.readline()
    finally:
        fh.close()
        raw.close()
    text = line.decode(encoding).rstrip("\r\n")
    if not text:
        return []
    return next(csv.reader([text], **dialect.params))


class CsvDecoder(LineDecoder):
    """Lines of one CSV file as dicts {column: value}; values are strings unless a converter is given."""

    def __init__(
        self,
        names: Sequence[str],
        dialect: CsvDialect,
        encoding: str = "utf-8",
        converters: dict[str, Callable[[str], Any]] | None = None,
        filename: str | None = None,
        filename_column: str | None = None,
        usecols: Sequence[str] | None = None,
    ) -> None:
        self.names = list(names)
        self.n = len(self.names)
        self.params = dialect.params
        self.encoding = encoding
        self.converters = [
            (i, name, fn)
            for i, name in enumerate(self.names)
            if (fn := (converters or {}).get(name)) is not None
        ]
        self.extra = {filename_column: filename} if filename_column else None
        if usecols is not None:
            missing = [c for c in usecols if c not in self.names]
            if missing:
                raise ValueError(f"{filename}: usecols names columns the file does not have: {missing}")
        self.usecols = list(usecols) if usecols is not None else None

    def decode(self, lines: list[bytes]) -> tuple[list[Any], list[tuple[int, str]]]:
        enc = self.encoding
        try:
            texts = [line.decode(enc) for line in lines]
            rows = list(csv.reader(texts, **self.params))
        except Exception:
            rows = None
        if rows is None or len(rows) != len(lines):  # an open quote swallowed a line, or bad bytes
            return self._one_by_one(lines)
        n, names = self.n, self.names
        if not self.converters and self.extra is None and self.usecols is None:
            if all(len(r) == n for r in rows):
                return [dict(zip(names, r)) for r in rows], []
        values: list[Any] = []
        errors: list[tuple[int, str]] = []
        for i, row in enumerate(rows):
            self._add(i, row, values, errors)
        return values, errors

    def _add(self, i: int, row: list[str], values: list[Any], errors: list[tuple[int, str]]) -> None:
        if not row:
            return  # blank line
        if len(row) != self.n:
            errors.append((i, f"expected {self.n} fields ({', '.join(self.names)}), got {len(row)}"))
            return
        record: dict[str, Any] = dict(zip(self.names, row))
        for j, name, fn in self.converters:
            try:
                record[name] = fn(row[j])
            except Exception as e:
                errors.append((i, f"column {name!r}: {type(e).__name__}: {e}"))
                return
        if self.usecols is not None:
            record = {c: record[c] for c in self.usecols}
        if self.extra is not None:
            record.update(self.extra)
        values.append(record)

    def _one_by_one(self, lines: list[bytes]) -> tuple[list[Any], list[tuple[int, str]]]:
        values: list[Any] = []
        errors: list[tuple[int, str]] = []
        params = dict(self.params, strict=True)
        for i, line in enumerate(lines):
            try:
                text = line.decode(self.encoding)
            except UnicodeDecodeError as e:
                errors.append((i, f"UnicodeDecodeError: {e}"))
                continue
            try:
                row = next(csv.reader([text], **params), [])
            except csv.Error as e:
                errors.append((i, f"csv.Error: {e} (a quoted field cannot span lines)"))
                continue
            self._add(i, row, values, errors)
        return values, errors


def record_fields(value: Any) -> tuple[list[str] | None, list[Any]]:
    """A record's field names (None for plain sequences) and values: dicts, named tuples, Rows, sequences."""
    if isinstance(value, dict):
        return list(value), list(value.values())
    asdict = getattr(value, "_asdict", None) or getattr(value, "as_dict", None)
    if callable(asdict):
        d = asdict()
        return list(d), list(d.values())
    if isinstance(value, (list, tuple)):
        return None, list(value)
    fields = getattr(value, "__dict__", None)
    if isinstance(fields, dict):
        return list(fields), list(fields.values())
    return None, [value]


class CsvFormat(TextFormat):
    """CSV output: a header line of column names per file (unless `header=False`), one line per record.

    Columns are `columns` when given, else the fields of the first record the sink sees; a dict missing a
    column writes an empty field, and a field not among the columns fails the job with a clear error.
    """

    def __init__(
        self,
        columns: Sequence[str] | None,
        header: bool,
        dialect: CsvDialect,
        compression: str,
        inner_name: str,
        na_rep: str = "",
    ) -> None:
        super().__init__(lambda v: self.encode_batch([v]), None, None, compression, inner_name)
        self.columns = list(columns) if columns is not None else None
        self.write_header = header
        self.dialect = dialect
        self.na_rep = na_rep

    def _ensure_columns(self, values: list[Any]) -> list[str] | None:
        if self.columns is None and values:
            names, _ = record_fields(_csv_ready(values[0]))
            if names is not None:
                self.columns = names
        return self.columns

    def header_bytes(self, values: list[Any]) -> bytes | None:
        columns = self._ensure_columns(values)
        if not self.write_header or columns is None:
            return None
        buf = io.StringIO()
        csv.writer(buf, **self.dialect.params).writerow(columns)
        return buf.getvalue().encode("utf-8")

    def header_lines(self, firsts: list[bytes]) -> bool:
        """Files of one sink each start with the same header line (named records, or `columns`); a shard's
        files whose first lines differ hold records without one."""
        if not self.write_header or not firsts or not firsts[0] or any(f != firsts[0] for f in firsts):
            return False
        known = self.header_bytes([])
        return known is None or known == firsts[0]

    def encode_batch(self, values: list[Any]) -> bytes:
        """Records as CSV lines."""
        columns = self._ensure_columns(values)
        na = self.na_rep
        rows = []
        for v in values:
            v = _csv_ready(v)
            names, fields = record_fields(v)
            if names is not None and columns is not None and names != columns:
                if isinstance(v, dict):
                    extra = [k for k in v if k not in columns]
                    if extra:
                        raise ValueError(
                            f"WriteToCsv: record has fields {extra} not among the columns {columns}"
                        )
                    fields = [v.get(c, na) for c in columns]
                else:
                    raise ValueError(f"WriteToCsv: record fields {names} differ from the columns {columns}")
            rows.append([na if f is None else f for f in fields])
        buf = io.StringIO()
        csv.writer(buf, **self.dialect.params).writerows(rows)
        return buf.getvalue().encode("utf-8")


def _csv_ready(value: Any) -> Any:
    """A dict with bytes fields (a dead-letter record) with those fields as text or base64 (`portable`)."""
    return portable(value) if isinstance(value, dict) and has_bytes(value) else value


__all__ = ["CsvDecoder", "CsvDialect", "CsvFormat", "read_header", "record_fields"]
