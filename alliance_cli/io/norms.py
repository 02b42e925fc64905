"""Local norms: a clinic's own mean, SD and reliability per scale, written by ``alliance
norms`` and read by ``--norms FILE`` (or ALLIANCE_NORMS) for z-scores and the
Jacobson-Truax reliable-change threshold. The file says it is ``level: local``, which
instrument and definition it was made for, from what sample and when."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from alliance_cli.core.compiled import Norm, NormScale
from alliance_cli.core.errors import DataFileError

LEVEL = "local"


def norms_document(
    instrument: str, sha256: str, metric: str, sample: str, date: str, scales: dict[str, Any]
) -> str:
    """The YAML text of a local norms file."""
    import yaml

    data = {
        "level": LEVEL,
        "instrument": instrument,
        "definition_sha256": sha256,
        "metric": metric,
        "sample": sample,
        "date": date,
        "scales": scales,
    }
    head = (
        "# Local norms made by `alliance norms` from this clinic's own data: not published\n"
        "# norms. Used by --norms FILE (or ALLIANCE_NORMS) for z-scores and the reliable-change\n"
        "# threshold; say so wherever a z-score from them is reported.\n"
    )
    return head + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def read_local_norms(path: Path) -> tuple[str, Norm]:
    """(instrument id, the norm sample) from a local norms file; DataFileError naming the
    file and the field for anything else."""
    from alliance_cli.io.yamlfile import read_yaml

    try:
        data, _, _ = read_yaml(path)
    except Exception as exc:  # a YAML or size problem: one line naming the file
        raise DataFileError(f"{path}: not a local norms file ({exc})") from None
    if not isinstance(data, dict) or data.get("level") != LEVEL:
        raise DataFileError(f"{path}: not a local norms file (level: local is missing)")
    instrument = data.get("instrument")
    metric = data.get("metric")
    scales = data.get("scales")
    if not isinstance(instrument, str) or metric not in ("mean", "sum"):
        raise DataFileError(f"{path}: instrument and metric (mean or sum) are required")
    if not isinstance(scales, dict) or not scales:
        raise DataFileError(f"{path}: scales: none")
    out: dict[str, NormScale] = {}
    for sid, values in scales.items():
        try:
            mean, sd, r = (float(values[k]) for k in ("mean", "sd", "reliability"))
        except (KeyError, TypeError, ValueError):
            raise DataFileError(f"{path}: scales.{sid}: mean, sd and reliability needed") from None
        if not (math.isfinite(mean) and sd > 0 and 0 <= r < 1):
            raise DataFileError(f"{path}: scales.{sid}: sd must be > 0 and reliability in [0, 1)")
        out[str(sid)] = NormScale(mean, sd, r)
    n = min(int(v.get("n", 0)) for v in scales.values())
    sample = f"{data.get('sample', 'local sample')}, {data.get('date', '')} (local norms)"
    return instrument, Norm(sample, n, f"local norms file {path.name}", metric, out)
