"""Fuzzing the inputs: whatever arrives, the outcome is a documented exit code with one-line
errors, never exit 1 (an internal error), and batch accounts for every row.

Fast enough for `make test`; ALLIANCE_FUZZ_EXAMPLES=2000 runs a longer profile.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import MINIMAL

EXAMPLES = int(os.environ.get("ALLIANCE_FUZZ_EXAMPLES", "60"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
DOCUMENTED = {0, 2, 3, 4, 5}
_SUMMARY = re.compile(r"batch: ([\d,]+) rows read, ([\d,]+) scored, ([\d,]+) rejected")


def _check(result) -> None:
    assert result.exit_code in DOCUMENTED, (result.exit_code, result.stderr[-2000:])
    for line in result.stderr.splitlines():
        assert "internal error" not in line and "Traceback" not in line, line


CELLS = st.one_of(
    st.sampled_from(["4", "5", "1", "", "NA", "-99", "Always", "9", "x", "3.5", " 2 ", '"', "="]),
    st.text(max_size=6),
)


@SETTINGS
@given(
    header=st.lists(
        st.sampled_from(["client_id", "session", "date", "note", *[f"q{i}" for i in range(1, 13)]]),
        min_size=1,
        max_size=16,
        unique=True,
    ),
    rows=st.lists(st.lists(CELLS, min_size=0, max_size=17), max_size=12),
    delimiter=st.sampled_from([",", ";", "\t"]),
    newline=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
    junk=st.binary(max_size=20),
)
def test_fuzzed_csv_bytes(cli, tmp_path: Path, header, rows, delimiter, newline, bom, junk):
    text = delimiter.join(header) + newline
    text += "".join(delimiter.join(r) + newline for r in rows)
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", "surrogatepass") + junk
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    result = cli("batch", str(path), "-i", "wai-sr", "-f", "csv")
    _check(result)
    summary = _SUMMARY.search(result.stderr)
    if summary:
        read, scored, rejected = (int(g.replace(",", "")) for g in summary.groups())
        assert read == scored + rejected
        assert len(result.stdout.splitlines()) >= 1 + scored or "\r" in result.stdout


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@SETTINGS
@given(
    lines=st.lists(
        st.one_of(
            st.builds(
                lambda a, c: {"answers": a, "client_id": c},
                st.lists(CELLS, max_size=13),
                st.one_of(st.none(), st.text(max_size=4)),
            ),
            JSON_VALUES,
        ),
        min_size=1,
        max_size=5,
    ),
    raw=st.text(max_size=30),
)
def test_fuzzed_stdin_json(cli, lines, raw):
    import json

    text = "\n".join(json.dumps(x) for x in lines) + "\n" + raw
    result = cli("score", "wai-sr", "-", "-f", "ndjson", input=text)
    _check(result)


YAML_PIECES = st.sampled_from(
    [
        "max: 5",
        "max: .inf",
        "max: 1e9",
        "step: 0",
        "step: -1",
        "reverse: maybe",
        "id: 1",
        "items: []",
        "min: 5",
        "labels: {1: '2'}",
        "name: x\nname: y",
        "&a [*a]",
        "{",
        "- - -",
        "",
    ]
)


@SETTINGS
@given(
    pieces=st.lists(st.tuples(st.sampled_from(MINIMAL.splitlines()[1:]), YAML_PIECES), max_size=3)
)
def test_fuzzed_instrument_files(cli, tmp_path: Path, pieces):
    text = MINIMAL
    for line, piece in pieces:
        if line.strip():
            text = text.replace(line, piece, 1)
    path = tmp_path / "mini.yaml"
    path.write_text(text, encoding="utf-8")
    result = cli("instruments", "check", str(path))
    _check(result)
    assert result.exit_code in (0, 4)


@SETTINGS
@given(template=st.text(max_size=20))
def test_fuzzed_column_templates(cli, template):
    from .conftest import ROOT

    result = cli(
        "batch",
        str(ROOT / "examples" / "clinic_wai_sr.csv"),
        "-i",
        "wai-sr",
        "--columns",
        template,
        "-q",
    )
    _check(result)


@SETTINGS
@given(body=st.text(max_size=200))
def test_fuzzed_map_files(cli, tmp_path: Path, body):
    from .conftest import ROOT

    path = tmp_path / "map.yaml"
    path.write_text(body, encoding="utf-8")
    result = cli(
        "batch",
        str(ROOT / "examples" / "clinic_wai_sr.csv"),
        "-i",
        "wai-sr",
        "--map",
        str(path),
        "-q",
    )
    _check(result)
