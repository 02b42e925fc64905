"""Issue 14: Parquet in and out (pyarrow, an optional extra)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import pytest

from .conftest import ROOT

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

EXPORT = ROOT / "examples" / "clinic_wai_sr.csv"


def test_parquet_output_has_the_csv_columns_typed(cli, tmp_path: Path):
    out = tmp_path / "s.parquet"
    result = cli("batch", str(EXPORT), "-i", "wai-sr", "-f", "parquet", "-o", str(out), "-q")
    assert result.exit_code == 3  # the two bad rows, rejected as always
    table = pq.read_table(out)
    rows = list(csv.DictReader(io.StringIO(cli("batch", str(EXPORT), "-i", "wai-sr").stdout)))
    assert table.column_names == list(rows[0])
    types = dict(zip(table.column_names, table.schema.types, strict=True))
    assert types["total_mean"] == pa.float64() and types["total_answered"] == pa.int64()
    assert types["record_id"] == pa.string() and types["flags"] == pa.string()
    assert table.num_rows == len(rows) == 197
    for got, want in zip(table.to_pylist(), rows, strict=True):
        for name, text in want.items():
            value = got[name]
            if isinstance(value, float):
                assert math.isclose(value, float(text), abs_tol=1e-9), (name, value, text)
            elif text == "" and types[name] != pa.string():
                assert value is None
            else:
                assert str(value) == text, (name, value, text)


def test_parquet_input_scores_like_the_csv_it_came_from(cli, tmp_path: Path):
    rows = list(csv.reader(EXPORT.open(encoding="utf-8")))
    table = pa.table({name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])})
    source = tmp_path / "export.parquet"
    pq.write_table(table, source, row_group_size=50)  # several batches
    from_parquet = cli("batch", str(source), "-i", "wai-sr")
    from_csv = cli("batch", str(EXPORT), "-i", "wai-sr")
    assert from_parquet.stdout == from_csv.stdout
    assert "layout: Parquet" in from_parquet.stderr
    # rows are numbered from 1: the CSV's line 12 is the Parquet's row 11
    assert f'rejected: {source}:11: wai_3: item 3: "6" is outside 1–5' in from_parquet.stderr


def test_typed_parquet_input_reads_numbers_as_answers(cli, tmp_path: Path):
    source = tmp_path / "typed.parquet"
    items = {f"wai_{i}": pa.array([4, None], type=pa.int64()) for i in range(1, 13)}
    table = pa.table({"client_id": ["A", "B"], "session": pa.array([1, 2]), **items})
    pq.write_table(table, source)
    result = cli("batch", str(source), "-i", "wai-sr", "-q")
    assert result.exit_code == 0, result.stderr
    (row,) = list(csv.DictReader(io.StringIO(result.stdout)))  # B answered nothing
    assert (row["client_id"], row["session"], row["total_mean"]) == ("A", "1", "4")


def test_parquet_without_pyarrow_says_how_to_install_it(cli, tmp_path: Path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = cli("batch", str(EXPORT), "-i", "wai-sr", "-f", "parquet", "-o", str(tmp_path / "x"))
    assert result.exit_code == 2 and "Parquet needs the optional pyarrow package" in result.stderr
    assert not (tmp_path / "x").exists()
