"""The Python API: the same numbers as the command line, streaming rows, frames, a light import."""

from __future__ import annotations

import csv
import io
import subprocess
import sys

import pytest

import alliance_cli
from alliance_cli import api
from alliance_cli.core.errors import DraftInstrument, RejectedInput

from .conftest import ROOT

EXPORT = ROOT / "examples" / "clinic_wai_sr.csv"


def _batch_rows(cli, *args: str) -> list[dict[str, str]]:
    result = cli("batch", str(EXPORT), "-i", "wai-sr", "-q", *args)
    return list(csv.DictReader(io.StringIO(result.stdout)))


def typed(rows: list[dict[str, str]]) -> list[dict[str, object]]:
    """batch's CSV cells as score_frame types them: means, sums, POMP and z as floats (None
    where blank), answered counts as ints, the rest as text."""
    out = []
    for row in rows:
        one: dict[str, object] = {}
        for name, cell in row.items():
            if name.endswith(api.FLOAT_ENDINGS):
                one[name] = float(cell) if cell else None
            elif name.endswith("_answered"):
                one[name] = int(cell)
            else:
                one[name] = cell
        out.append(one)
    return out


def plain(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    """A frame's records with NaN as None (pandas' missing float), for comparing."""
    return [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()}
            for r in rows]  # fmt: skip


def test_public_names_are_complete_and_sorted():
    assert api.__all__ == sorted(api.__all__)
    public = {n for n in vars(api) if not n.startswith("_") and callable(getattr(api, n))}
    defined_here = {n for n in public if getattr(getattr(api, n), "__module__", "") == api.__name__}
    assert set(api.__all__) == defined_here
    assert alliance_cli.__all__ == sorted(alliance_cli.__all__)
    assert set(alliance_cli.__all__) == {"__version__", *api.__all__}
    assert alliance_cli.score is api.score


def test_import_alliance_cli_stays_light():
    heavy = "('pydantic', 'yaml', 'rich', 'typer', 'alliance_cli.api')"
    code = f"import sys, alliance_cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_score_equals_the_score_command(cli):
    answers = ["4", "4", "5", "3", "5", "4", "4", "3", "5", "4", "4", "4"]
    ours = api.score("wai-sr", answers, client_id="C-102", session=3).model_dump(mode="json")
    (theirs,) = __import__("json").loads(
        cli("score", "wai-sr", *answers, "--client", "C-102", "--session", "3", "-f", "json").stdout
    )
    assert ours == theirs


def test_score_rows_equals_batch(cli):
    rows = list(csv.DictReader(EXPORT.open(encoding="utf-8")))
    rejected = []
    ours = list(api.score_rows("wai-sr", rows, on_reject=rejected.append, chunk=50))
    assert ours == _batch_rows(cli)
    assert [(r.line, r.column) for r in rejected] == [(11, "wai_3"), (41, "wai_5")]


def test_score_rows_raises_without_on_reject():
    rows = list(csv.DictReader(EXPORT.open(encoding="utf-8")))
    with pytest.raises(RejectedInput, match="row 11: item 3"):
        list(api.score_rows("wai-sr", rows))


def test_score_rows_with_named_columns():
    rows = [{"who": "a", "Q1": "4", **{f"Q{i}": "3" for i in range(2, 13)}}]
    by_template = list(api.score_rows("wai-sr", rows, columns="Q{item}"))
    by_mapping = list(
        api.score_rows("wai-sr", rows, columns={str(i): f"Q{i}" for i in range(1, 13)})
    )
    assert by_template == by_mapping and by_template[0]["task_mean"] == "3.25"


def test_a_draft_is_refused():
    with pytest.raises(DraftInstrument):
        api.score("star-p", ["2"] * 12)


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_score_frame_equals_batch(cli, library):
    lib = pytest.importorskip(library)
    frame = (
        lib.read_csv(EXPORT, infer_schema=False)
        if library == "polars"
        else lib.read_csv(EXPORT, dtype=str, keep_default_na=False)
    )
    rejected = []
    scored = api.score_frame(frame, "wai-sr", on_reject=rejected.append)
    assert type(scored).__module__.split(".")[0] == library
    rows = scored.to_dicts() if library == "polars" else scored.to_dict("records")
    assert plain(rows) == typed(_batch_rows(cli))
    assert len(rejected) == 2
    if library == "pandas":
        assert str(scored["total_mean"].dtype) == "float64"
        assert str(scored["total_answered"].dtype) == "Int64"


@pytest.mark.parametrize("library", ["pandas", "polars"])
def test_score_frame_reads_numbers_as_a_csv_export_writes_them(library):
    """Issue 23, item 7: a float column read -99 as "-99.0", so Qualtrics' not-answered code
    was not missing (4,696 rows scored against batch's 4,994); pass-through columns keep
    their types."""
    lib = pytest.importorskip(library)
    data = {"ResponseId": ["R_1", "R_2"], "age": [34, 51],
            **{f"Q1_{i}": [4.0, -99.0 if i == 3 else 5.0] for i in range(1, 5)}}  # fmt: skip
    frame = lib.DataFrame(data)
    scored = api.score_frame(frame, "srs", columns="Q1_{item}")
    rows = plain(scored.to_dicts() if library == "polars" else scored.to_dict("records"))
    assert [r["total_answered"] for r in rows] == [4, 3]  # -99.0: Qualtrics' missing code
    assert [r["age"] for r in rows] == [34, 51]  # still numbers
    assert rows[0]["total_sum"] == 16.0


def test_score_rows_reads_layouts_as_batch_does(tmp_path):
    """score_rows skipped layouts: a REDCap export lost its session, and rows named for
    another instrument were scored (wai_sr_* as wai-s)."""
    rows = [{"record_id": "C-1", "redcap_event_name": "session_3_arm_1",
             **{f"wai_{i}": "4" for i in range(1, 13)}, "wai_sr_complete": "2"}]  # fmt: skip
    (scored,) = list(api.score_rows("wai-sr", rows))
    assert scored["session"] == "1"  # its first administration (event order in the file)
    foreign = [{f"wai_sr_{i}": "4" for i in range(1, 13)}]
    from alliance_cli.core.errors import UsageProblem

    with pytest.raises(UsageProblem, match="named for instrument 'wai-sr'"):
        list(api.score_rows("wai-s", foreign))


@pytest.mark.parametrize("session", [0, -3, True])
def test_api_sessions_follow_the_command_lines_rule(session):
    """Issue 23: session=0 and session=-3 were accepted by api.score."""
    from alliance_cli import api
    from alliance_cli.core.errors import UsageProblem

    with pytest.raises(UsageProblem, match="session"):
        api.score("srs", [9, 9, 9, 9], session=session)


def test_install_hints_name_the_real_distribution():
    from alliance_cli.io import fhir, parquet

    assert "pip install 'alliance[fhir]'" in fhir.EXTRA
    assert "pip install 'alliance[parquet]'" in parquet.EXTRA


def test_the_api_takes_redcaps_sessions_and_dictionary_files(tmp_path):
    """As batch's --sessions and --dictionary: an event table fixes the sessions."""
    table = tmp_path / "sessions.csv"
    table.write_text("event,session\nintake_arm_1,4\nweek_2_arm_1,5\n")
    rows = [{"record_id": "R1", "redcap_event_name": event, **{f"wai_{i}": "4" for i in
             range(1, 13)}} for event in ("intake_arm_1", "week_2_arm_1")]  # fmt: skip
    scored = list(api.score_rows("wai-sr", rows, sessions=table))
    assert [r["session"] for r in scored] == ["4", "5"]
