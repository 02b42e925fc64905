"""Issue 14: scoring a dataset too large for one machine with Dask, over the Python API.

A local dask.distributed cluster with 2 worker processes scores a partitioned CSV (and
Parquet) dataset with ``map_partitions(api.score_frame, ...)``; the result must equal
``alliance batch`` on the same rows, cell for cell.
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import pytest

from .conftest import ROOT

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")

EXPORT = ROOT / "examples" / "clinic_wai_sr.csv"


def _partitions(tmp_path: Path, parts: int = 3) -> tuple[Path, list[list[str]]]:
    rows = list(csv.reader(EXPORT.open(encoding="utf-8")))
    header, body = rows[0], rows[1:]
    size = -(-len(body) // parts)
    folder = tmp_path / "dataset"
    folder.mkdir()
    for n in range(parts):
        with (folder / f"part-{n}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(body[n * size : (n + 1) * size])
    return folder, rows


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


def _batch(cli) -> list[dict[str, str]]:
    result = cli("batch", str(EXPORT), "-i", "wai-sr", "-q")
    assert result.exit_code == 3  # the export's two bad rows, rejected
    return list(csv.DictReader(io.StringIO(result.stdout)))


def _score(ddf):
    from alliance_cli import api

    meta = api.score_frame(ddf._meta, "wai-sr")  # batch's columns, no rows
    # rejected rows go to a logger: picklable, so every worker can report them
    rejects = logging.getLogger("alliance.rejects").warning
    scored = ddf.map_partitions(api.score_frame, "wai-sr", on_reject=rejects, meta=meta)
    return scored.compute()


def test_dask_over_a_partitioned_csv_dataset_equals_batch(cli, client, tmp_path: Path):
    folder, _ = _partitions(tmp_path)
    ddf = dd.read_csv(str(folder / "part-*.csv"), dtype=str, keep_default_na=False)
    assert ddf.npartitions == 3
    frame = _score(ddf)
    workers = client.run(lambda: True)
    assert len(workers) == 2
    got = [{k: ("" if v is None else str(v)) for k, v in row.items()}
           for row in frame.to_dict("records")]  # fmt: skip
    assert got == _batch(cli)


def test_dask_over_a_parquet_dataset_equals_batch(cli, client, tmp_path: Path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    folder, _ = _partitions(tmp_path)
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    for n, part in enumerate(sorted(folder.glob("part-*.csv"))):
        pd.read_csv(part, dtype=str, keep_default_na=False).to_parquet(parquet / f"{n}.parquet")
    frame = _score(dd.read_parquet(str(parquet)))
    got = [{k: ("" if v is None else str(v)) for k, v in row.items()}
           for row in frame.to_dict("records")]  # fmt: skip
    assert got == _batch(cli)
