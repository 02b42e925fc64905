"""Parquet in and out (pyarrow, an optional extra imported only here and only when used).

In: a Parquet file is read a record batch at a time and handed to the engine as CSV text, so
every rule (detection, rejection, the fast path) is the one CSV input gets; memory stays
flat. Out: ``-f parquet`` writes the same columns as ``-f csv``, typed: scale means, sums,
POMP and z as float64, answered counts as int64, the rest as strings.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from alliance_cli.core.errors import DataFileError, UsageProblem

EXTRA = "pip install 'alliance[parquet]' (or: pip install pyarrow)"
MAGIC = b"PAR1"


def pyarrow() -> Any:
    """The pyarrow modules, or a usage error saying how to install them."""
    try:
        import pyarrow as pa
        import pyarrow.csv as pa_csv
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageProblem(f"Parquet needs the optional pyarrow package: {EXTRA}") from None
    return pa, pa_csv, pq


def is_parquet(name: str) -> bool:
    """Whether an input is Parquet: its name, or its first bytes."""
    if name == "-":
        return False
    if name.lower().endswith((".parquet", ".pq")):
        return True
    try:
        with open(name, "rb") as handle:
            return handle.read(4) == MAGIC
    except OSError:
        return False


def open_parquet(name: str) -> tuple[list[str], IO[str], Iterator[str]]:
    """(header, a handle to close, the data rows as CSV lines) of a Parquet file."""
    pa, pa_csv, pq = pyarrow()
    try:
        reader = pq.ParquetFile(name)
    except OSError as exc:
        raise DataFileError(f"{name}: cannot read ({exc.strerror or exc})") from None
    except pa.ArrowInvalid as exc:
        raise DataFileError(f"{name}: not a Parquet file ({exc})") from None
    header = [str(n) for n in reader.schema_arrow.names]
    options = pa_csv.WriteOptions(include_header=False)

    def lines() -> Iterator[str]:
        try:
            yield from _lines()
        except (pa.ArrowException, UnicodeDecodeError) as exc:  # a damaged file, mid-way
            raise DataFileError(f"{name}: cannot read its rows ({exc})") from None

    def _lines() -> Iterator[str]:
        for batch in reader.iter_batches(batch_size=65536):
            text = io.BytesIO()
            table = pa.Table.from_batches([batch])
            # every column as text, as a CSV export would hold it (nulls empty)
            strings = pa.table({n: as_text(pa, table.column(n)) for n in table.column_names})
            pa_csv.write_csv(strings, text, options)
            yield from io.StringIO(text.getvalue().decode("utf-8"), newline="")

    return header, io.StringIO(""), lines()


def as_text(pa: Any, column: Any) -> Any:
    """A column as text: lists and structs as JSON, bytes as UTF-8 (a byte that is not
    shown as ``\\xNN``), anything else as Arrow casts it to a string."""
    kind = column.type
    if pa.types.is_nested(kind):
        import json

        values = [None if v is None else json.dumps(v, default=str) for v in column.to_pylist()]
        return pa.array(values, type=pa.string())
    if (
        pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
        or pa.types.is_fixed_size_binary(kind)
    ):
        values = [
            None if v is None else v.decode("utf-8", errors="backslashreplace")
            for v in column.to_pylist()
        ]
        return pa.array(values, type=pa.string())
    try:
        return column.cast(pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):  # a type with no cast to text
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())


_FLOAT = ("_mean", "_sum", "_pomp", "_z")


def column_types(header: list[str], score_names: list[str]) -> dict[str, Any]:
    """Arrow types of batch's CSV columns: numbers typed, everything else text."""
    pa, _, _ = pyarrow()
    types: dict[str, Any] = {}
    for name in header:
        if name in score_names and name.endswith(_FLOAT):
            types[name] = pa.float64()
        elif name in score_names and name.endswith("_answered"):
            types[name] = pa.int64()
        else:
            types[name] = pa.string()
    return types


def csv_to_parquet(csv_path: Path, out: IO[bytes], score_names: list[str]) -> None:
    """Convert batch's CSV output (a spooled file) to Parquet, streaming, typed."""
    pa, pa_csv, pq = pyarrow()
    with open(csv_path, "rb") as handle:
        first = handle.readline().decode("utf-8")
    import csv

    header = next(csv.reader([first])) if first else []
    types = column_types(header, score_names)
    convert = pa_csv.ConvertOptions(
        column_types=types, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    read = pa_csv.ReadOptions(block_size=1 << 22)
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    schema = pa.schema([(n, types[n]) for n in header])
    with pq.ParquetWriter(out, schema) as writer:
        stream = pa_csv.open_csv(
            str(csv_path), read_options=read, parse_options=parse, convert_options=convert
        )
        for batch in stream:
            writer.write_batch(batch)
