"""Issue 24 (in part): `alliance reliability`, cross-checked with R's psych::alpha.

tests/fixtures/psych/alpha_with_psych.R made alpha_answers.csv (300 WAI-S answer sets, items
4 and 10 written reversed, seed 20261203) and alpha_expected.csv (psych 2.2.9 on the keyed
data, keys typed from the scoring facts). The tests only read them: no R needed."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "psych"


def _expected() -> dict[tuple[str, str, str], float]:
    with open(FIXTURES / "alpha_expected.csv", encoding="utf-8") as handle:
        return {
            (r["scale"], r["stat"], r["item"]): float(r["value"]) for r in csv.DictReader(handle)
        }


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> dict[str, dict]:
    from typer.testing import CliRunner

    from alliance_cli.cli.app import app

    result = CliRunner().invoke(
        app, ["reliability", str(FIXTURES / "alpha_answers.csv"), "-i", "wai-s", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    return {r["scale"]: r for r in json.loads(result.stdout)}


def test_alpha_and_item_statistics_equal_psych(ours):
    expected = _expected()
    compared = 0
    for (scale, stat, item), want in expected.items():
        r = ours[scale]
        if item:
            got = next(s for s in r["item_stats"] if s["item"] == item)[stat]
        else:
            got = {"raw_alpha": r["alpha"], "std_alpha": r["std_alpha"],
                   "average_r": r["average_r"], "feldt_low": r["alpha_ci95"][0],
                   "feldt_high": r["alpha_ci95"][1]}[stat]  # fmt: skip
        assert math.isclose(got, want, abs_tol=1e-6), (scale, stat, item, got, want)
        compared += 1
    assert compared == 68 and set(ours) == {"goal", "task", "bond", "total"}


def test_an_item_that_runs_against_its_scale_is_said(cli, tmp_path: Path):
    """Item 10 keyed the wrong way round (its column written unreversed) runs against Goal."""
    with open(FIXTURES / "alpha_answers.csv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    for row in rows[1:]:
        row[10] = str(8 - int(row[10]))  # q10 as if the export had reversed it already
    src = tmp_path / "flipped.csv"
    with open(src, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    result = cli("reliability", str(src), "-i", "wai-s", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert "item 10 runs against its scale" in result.stderr
    goal = next(r for r in json.loads(result.stdout) if r["scale"] == "goal")
    assert goal["warnings"] and goal["alpha"] < 0.5


def test_reliability_reads_as_batch_reads_and_says_its_missing_rule(cli):
    from .conftest import ROOT

    result = cli("reliability", str(ROOT / "examples" / "clinic_wai_sr.csv"), "-i", "wai-sr",
                 "-f", "csv")  # fmt: skip
    assert result.exit_code == 3, result.stderr  # two rows rejected: exit 3, as batch
    assert "199 rows read, 197 scored, 2 rejected" in result.stderr
    assert "complete cases" in result.stderr
    header = result.stdout.splitlines()[0].split(",")
    assert header[:4] == ["scale", "item", "n", "alpha"]
    assert len(result.stdout.splitlines()) == 1 + 4 + 12 + 12  # 3 subscales + total, items


def test_from_history_equals_the_file_it_was_saved_from(cli, tmp_path: Path):
    from .conftest import ROOT

    export = str(ROOT / "examples" / "clinic_wai_sr.csv")
    db = str(tmp_path / "h.sqlite")
    assert cli("batch", export, "-i", "wai-sr", "--save", "--db", db, "-q",
               "-o", str(tmp_path / "o.csv")).exit_code == 3  # fmt: skip
    from_file = json.loads(cli("reliability", export, "-i", "wai-sr", "-f", "json").stdout)
    result = cli("reliability", "--from-history", "-i", "wai-sr", "--db", db, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == from_file
    first = cli("reliability", "--from-history", "-i", "wai-sr", "--db", db, "--session", "1",
                "-f", "json")  # fmt: skip
    assert "answer sets from session 1 of the history" in first.stderr
    assert json.loads(first.stdout)[0]["n"] < from_file[0]["n"]
    both = cli("reliability", export, "--from-history", "-i", "wai-sr")
    assert both.exit_code == 2
    # --session on the file keeps the same rows as on the history it was saved to
    from_file_first = cli("reliability", export, "-i", "wai-sr", "--session", "1", "-f", "json")
    assert from_file_first.exit_code == 3, from_file_first.stderr  # (the 2 rejected rows)
    assert json.loads(from_file_first.stdout) == json.loads(first.stdout)


def test_one_clients_rows_are_said_and_session_keeps_one_each(cli, tmp_path, monkeypatch):
    """A clinic export holds every session of each client. Found as a user: norms and
    reliability pooled the 197 rows of 36 clients as if independent, without a word. Now the
    note says so, the norms' sample names its clients, and --session 1 keeps each client's
    first session, on the fast path and the careful one alike."""
    import yaml

    from alliance_cli.batch.engine import NO_FASTPATH

    from .conftest import ROOT

    export = ROOT / "examples" / "clinic_wai_sr.csv"
    with open(export, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    clients = {r["record_id"] for r in rows}
    firsts = [r for r in rows if r["session"] == "1"]
    most = max(sum(r["record_id"] == c for r in rows) for c in clients)
    pooled = cli("norms", str(export), "-i", "wai-sr", "-o", str(tmp_path / "all.yaml"))
    assert pooled.exit_code == 3, pooled.stderr  # (2 rejected rows, as batch)
    note = f"the 197 rows come from {len(clients)} clients (up to {most} each)"
    assert note in pooled.stderr and "--session 1" in pooled.stderr
    data = yaml.safe_load((tmp_path / "all.yaml").read_text(encoding="utf-8"))
    assert data["sample"] == f"197 rows ({len(clients)} clients) of {export}"
    first = cli("norms", str(export), "-i", "wai-sr", "--session", "1", "-o",
                str(tmp_path / "first.yaml"))  # fmt: skip
    assert "not independent" not in first.stderr
    assert f"{197 - len(firsts):,} of other sessions left out" in first.stderr  # (scored)
    data = yaml.safe_load((tmp_path / "first.yaml").read_text(encoding="utf-8"))
    assert data["sample"] == (
        f"{len(firsts)} rows of session 1 ({len(firsts)} clients) of {export}"
    )
    # the first sessions alone, written out as a file of their own, give the same norms
    alone = tmp_path / "firsts.csv"
    with open(alone, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(firsts)
    same = cli("norms", str(alone), "-i", "wai-sr", "-o", str(tmp_path / "alone.yaml"), "-q")
    scales = yaml.safe_load((tmp_path / "alone.yaml").read_text(encoding="utf-8"))["scales"]
    assert same.exit_code == 0 and scales == data["scales"]
    monkeypatch.setenv(NO_FASTPATH, "1")
    careful = cli("reliability", str(export), "-i", "wai-sr", "--session", "1", "-f", "json")
    monkeypatch.delenv(NO_FASTPATH)
    fast = cli("reliability", str(export), "-i", "wai-sr", "--session", "1", "-f", "json")
    assert careful.stdout == fast.stdout and json.loads(fast.stdout)[0]["n"] < 40
    bare = tmp_path / "bare.csv"  # no session column: --session cannot choose
    header = ",".join(f"wai_{i}" for i in range(1, 13))
    bare.write_text(header + "\n" + "4,5,3,4,4,5,4,3,4,4,5,4\n" * 40, encoding="utf-8")
    refused = cli("reliability", str(bare), "-i", "wai-sr", "--session", "1")
    assert refused.exit_code == 2 and "has no session column" in refused.stderr, refused.stderr


def test_local_norms_are_written_and_used_for_z_and_reliable_change(cli, tmp_path, monkeypatch):
    """Issue 24, item 3: alliance norms writes level: local norms; --norms FILE (or
    ALLIANCE_NORMS) makes score give z-scores from them and history's threshold Jacobson-
    Truax from their SD and alpha."""
    import yaml

    from .conftest import ROOT

    export = str(ROOT / "examples" / "clinic_wai_sr.csv")
    norms = tmp_path / "clinic-norms.yaml"
    made = cli("norms", export, "-i", "wai-sr", "-o", str(norms), "-q")
    assert made.exit_code == 3, made.stderr  # written from the 197 rows; 2 rejected, as batch
    data = yaml.safe_load(norms.read_text(encoding="utf-8"))
    assert data["level"] == "local" and data["instrument"] == "wai-sr"
    goal = data["scales"]["goal"]
    reliability = {r["scale"]: r for r in json.loads(
        cli("reliability", export, "-i", "wai-sr", "-f", "json").stdout)}  # fmt: skip
    assert goal["reliability"] == reliability["goal"]["alpha"] and goal["n"] == 191
    answers = "4 4 5 3 5 4 4 3 5 4 4 4".split()  # goal items 4 6 8 11: 3 4 3 4, mean 3.5
    scored = cli("--norms", str(norms), "score", "wai-sr", *answers, "-f", "json")
    assert scored.exit_code == 0, scored.stderr
    z = json.loads(scored.stdout)[0]["scales"]["goal"]["z"]
    assert math.isclose(z, (3.5 - goal["mean"]) / goal["sd"], abs_tol=1e-6)
    assert f"local norms from {norms} (n = 177)" in scored.stderr  # the smallest scale's n
    plain = json.loads(cli("score", "wai-sr", *answers, "-f", "json").stdout)
    assert plain[0]["scales"]["goal"]["z"] is None  # no bundled norms: none without the file
    db = str(tmp_path / "h.sqlite")
    cli("batch", export, "-i", "wai-sr", "--save", "--db", db, "-q", "-o", str(tmp_path / "o"))
    without = json.loads(cli("history", "C-107", "--db", db, "-f", "json").stdout)[0]
    monkeypatch.setenv("ALLIANCE_NORMS", str(norms))
    with_norms = json.loads(cli("history", "C-107", "--db", db, "-f", "json").stdout)[0]
    # Jacobson & Truax: 1.96 * sqrt(2) * SD * sqrt(1 - r), in POMP (WAI-SR 1-5: x 25)
    expected = 1.96 * math.sqrt(2) * goal["sd"] * math.sqrt(1 - goal["reliability"]) * 25
    assert math.isclose(with_norms["thresholds"]["goal"], expected, rel_tol=1e-3)
    assert with_norms["thresholds"] != without["thresholds"]


def test_a_file_that_is_not_local_norms_is_refused(cli, tmp_path: Path):
    bad = tmp_path / "n.yaml"
    bad.write_text("level: published\ninstrument: wai-sr\n")
    result = cli("--norms", str(bad), "score", "wai-sr", *["4"] * 12)
    assert result.exit_code == 5 and "not a local norms file" in result.stderr


def test_omega_total_is_psych_omega_with_one_factor(ours):
    """McDonald's omega from a one-factor minres model against psych::omega(nfactors = 1) on
    the same keyed data. The fit is psych's own (objective, gradient, start, bounds, scale and
    stopping rule, by the same L-BFGS-B) and omega total is psych's formula, so they agree to
    1e-10, not just within the tolerance of two different fits."""
    pytest.importorskip("scipy.optimize")
    with open(FIXTURES / "omega_expected.csv", encoding="utf-8") as handle:
        expected = {r["scale"]: float(r["omega_total"]) for r in csv.DictReader(handle)}
    for scale, want in expected.items():
        got = ours[scale]["omega_total"]
        assert math.isclose(got, round(want, 6), abs_tol=1e-12), (scale, got, want)
        assert "minres" in ours[scale]["omega_estimator"]
    from alliance_cli.core.reliability import omega_total

    for scale, want in expected.items():  # the unrounded figure, from the same correlations
        assert math.isclose(_omega_of_fixture(scale), want, abs_tol=1e-10), scale
    assert omega_total([[1.0, 0.3], [0.3, 1.0]]) is not None


def _omega_of_fixture(scale: str) -> float:
    """omega_total on the fixture scale's correlation matrix (complete cases, keyed)."""
    from typer.testing import CliRunner

    import alliance_cli.core.reliability as rel
    from alliance_cli.cli.app import app

    seen: dict[int, float] = {}
    real = rel.omega_total

    def spy(corr):  # type: ignore[no-untyped-def]
        value = real(corr)
        seen[len(seen)] = value
        return value

    rel.omega_total = spy
    try:
        result = CliRunner().invoke(
            app, ["reliability", str(FIXTURES / "alpha_answers.csv"), "-i", "wai-s", "-f", "json"]
        )
    finally:
        rel.omega_total = real
    order = [r["scale"] for r in json.loads(result.stdout)]
    return seen[order.index(scale)]


def test_omega_on_matrices_given_to_psych_directly():
    """psych::omega(nfactors = 1) on two correlation matrices (omega_matrices.R): an ordinary
    one and a singular one (two identical items: SMCs from psych's pseudo-inverse, clipped)."""
    pytest.importorskip("scipy.optimize")
    from alliance_cli.core.reliability import omega_total

    with open(FIXTURES / "omega_matrices_expected.csv", encoding="utf-8") as handle:
        cases = list(csv.DictReader(handle))
    assert len(cases) == 2
    for case in cases:
        cells = [float(x) for x in case["matrix"].split()]
        k = math.isqrt(len(cells))
        corr = [cells[i * k : (i + 1) * k] for i in range(k)]  # R writes by column; symmetric
        got = omega_total(corr)
        assert got is not None
        assert math.isclose(got, float(case["omega_total"]), abs_tol=1e-10), case["name"]


def test_omega_of_an_exact_one_factor_matrix_is_worked_by_hand():
    """Correlations r_ij = l_i l_j with loadings 0.8, 0.7, 0.6, 0.5: the fit finds them, the
    uniquenesses are 0.36 + 0.51 + 0.64 + 0.75 = 2.26 and the sum of R is 2.6^2 + 2.26 = 9.02,
    so omega total = (9.02 - 2.26) / 9.02 = 0.749446 (to the fit's stopping rule, 1e-6)."""
    pytest.importorskip("scipy.optimize")
    from alliance_cli.core.reliability import omega_total

    load = [0.8, 0.7, 0.6, 0.5]
    corr = [[1.0 if i == j else load[i] * load[j] for j in range(4)] for i in range(4)]
    assert math.isclose(omega_total(corr) or 0.0, 6.76 / 9.02, abs_tol=1e-6)


def test_without_the_omega_extra_omega_is_null_and_a_note_says_how_to_get_it(cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "scipy.optimize", None)  # import fails, as if missing
    result = cli("reliability", str(FIXTURES / "alpha_answers.csv"), "-i", "wai-s", "-f", "json")
    assert result.exit_code == 0
    assert all(r["omega_total"] is None for r in json.loads(result.stdout))
    assert "pip install 'alliance[omega]'" in result.stderr


def test_scales_that_cannot_be_computed_are_said_not_nan(cli, tmp_path: Path):
    """Issue 24, item 5: a constant item is a note (its scale left out, exit 3), fewer than 3
    complete cases a reason; norms need 30 complete cases per scale."""
    head = "client_id," + ",".join(f"q{i}" for i in range(1, 5))
    rows = [f"c{i},{1 + i % 7},{1 + (i * 3) % 7},9,{1 + (i * 5) % 7}" for i in range(40)]
    src = tmp_path / "x.csv"
    src.write_text(head + "\n" + "\n".join(rows) + "\n")
    result = cli("reliability", str(src), "-i", "srs", "-f", "json")
    assert result.exit_code == 3
    assert "item 3 has the same answer in every row; this scale is left out" in result.stderr
    assert "nan" not in result.stdout.lower()
    few = tmp_path / "few.csv"
    few.write_text(head + "\n" + "\n".join(rows[:2]) + "\n")
    two = cli("reliability", str(few), "-i", "srs")
    assert two.exit_code == 3 and "has 2 complete rows of the 3 it needs" in two.stderr, two.stderr
    small = tmp_path / "small.csv"
    varied = [f"c{i},{1 + i % 7},{1 + (i * 3) % 7},{1 + (i * 2) % 5},{1 + (i * 5) % 7}"
              for i in range(20)]  # fmt: skip
    small.write_text(head + "\n" + "\n".join(varied) + "\n")
    refused = cli("norms", str(small), "-i", "srs", "-o", str(tmp_path / "n.yaml"))
    assert refused.exit_code == 3 and "need 30 complete cases per scale" in refused.stderr
    assert not (tmp_path / "n.yaml").exists()


def _naive_moments(rows: list[list[float | None]]) -> tuple[int, list[float], list[list[float]]]:
    """Complete cases, means and sample covariances the plain way (an independent check)."""
    complete = [r for r in rows if all(v is not None for v in r)]
    n, k = len(complete), len(rows[0])
    means = [math.fsum(r[i] for r in complete) / n for i in range(k)]  # type: ignore[misc]
    cov = [
        [
            math.fsum((r[i] - means[i]) * (r[j] - means[j]) for r in complete) / (n - 1)  # type: ignore[operator]
            for j in range(k)
        ]
        for i in range(k)
    ]
    return n, means, cov


@pytest.mark.parametrize(("high", "step"), [(7, 1), (10, 0.1), (100, 0.1)])
def test_exact_moments_equal_the_plain_computation(high, step):
    """The bit-plane sums (core/reliability.moments) against the textbook formulas, on random
    answers with missing ones: a 1-7 form, a 0-10 by 0.1 line (101 steps: 7 planes) and a
    0-100 by 0.1 line (1,001 steps: more than a byte, the k-by-k path)."""
    import random
    from types import SimpleNamespace

    from alliance_cli.core.reliability import _Codes, _planes, moments

    low = 1.0 if step == 1 else 0.0  # the few attributes _Codes reads from a Scorer:
    Scale = SimpleNamespace(low=low, high=float(high), step=step, answer_tables=[{"": None}] * 4)
    steps = round((Scale.high - Scale.low) / step)
    rng = random.Random(high)
    rows = [
        [
            None if rng.random() < 0.05 else round(Scale.low + step * rng.randint(0, steps), 10)
            for _ in range(4)
        ]
        for _ in range(500)
    ]
    columns = list(zip(*rows, strict=True))
    encoded = [_planes(c, _Codes(Scale, p)) for p, c in enumerate(columns)]  # type: ignore[arg-type]
    got = moments(encoded, Scale.low, step)
    n, means, cov = _naive_moments(rows)
    assert got.n == n and 350 < n < 500
    assert all(math.isclose(a, b, rel_tol=1e-12) for a, b in zip(got.means, means, strict=True))
    for i in range(4):
        for j in range(4):
            assert math.isclose(got.cov[i][j], cov[i][j], rel_tol=1e-9, abs_tol=1e-12)


def test_odd_cells_and_the_careful_path_give_the_same_numbers(cli, tmp_path: Path, monkeypatch):
    """Cells the answer tables do not know (' 5', '5.0', a label) are parsed as batch parses
    them; rows with a bad cell are rejected, as batch rejects them; and reading every row
    the careful way (ALLIANCE_NO_FASTPATH) gives the same output."""
    from alliance_cli.batch.engine import NO_FASTPATH

    with open(FIXTURES / "alpha_answers.csv", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    rows[1][1] = f" {rows[1][1]} "
    rows[2][2] = f"{rows[2][2]}.0"
    rows[3][3] = "9"  # outside 1-7: rejected, as batch rejects it
    src = tmp_path / "odd.csv"
    with open(src, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    plain = cli("reliability", str(src), "-i", "wai-s", "-f", "json", "--no-omega")
    assert plain.exit_code == 3, plain.stderr  # one row rejected
    assert "300 rows read, 299 scored, 1 rejected" in plain.stderr
    batch = cli("batch", str(src), "-i", "wai-s", "-q")
    assert batch.exit_code == 3 and len(batch.stdout.splitlines()) == 1 + 299
    monkeypatch.setenv(NO_FASTPATH, "1")
    careful = cli("reliability", str(src), "-i", "wai-s", "-f", "json", "--no-omega")
    assert careful.stdout == plain.stdout
    monkeypatch.delenv(NO_FASTPATH)
    dropped = [r for k, r in enumerate(rows) if k != 3]
    clean = tmp_path / "clean.csv"
    for r in dropped[1:3]:
        r[1], r[2] = r[1].strip(), r[2].removesuffix(".0")
    with open(clean, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(dropped)
    same = cli("reliability", str(clean), "-i", "wai-s", "-f", "json", "--no-omega")
    assert same.stdout == plain.stdout


def test_no_omega_skips_the_factor_model_and_says_nothing_of_it(cli):
    result = cli("reliability", str(FIXTURES / "alpha_answers.csv"), "-i", "wai-s", "-f", "json",
                 "--no-omega")  # fmt: skip
    assert result.exit_code == 0
    assert all(r["omega_total"] is None for r in json.loads(result.stdout))
    assert "omega" not in result.stderr


def test_norms_never_write_over_a_file_the_run_reads(cli, tmp_path: Path):
    """Found in review: `norms export.csv -o export.csv` replaced the clinic's export with
    the norms, and `--map m.yaml -o m.yaml` the map. norms now checks its -o as batch does."""
    from .conftest import ROOT

    export = tmp_path / "export.csv"
    export.write_bytes((ROOT / "examples" / "clinic_wai_sr.csv").read_bytes())
    before = export.read_bytes()
    same = cli("norms", str(export), "-i", "wai-sr", "-o", str(export), "-q")
    assert same.exit_code == 2 and "is the input" in same.stderr
    assert export.read_bytes() == before
    mapping = tmp_path / "map.yaml"
    mapping.write_text("items:\n" + "".join(f"  {i}: wai_{i}\n" for i in range(1, 13)))
    kept = mapping.read_text()
    over = cli("norms", str(export), "-i", "wai-sr", "--map", str(mapping), "-o", str(mapping))
    assert over.exit_code == 2 and "is the --map file" in over.stderr
    assert mapping.read_text() == kept


def test_csv_carries_omega_on_each_scales_row(cli):
    """-f csv has the JSON's figures: omega in the last column of a scale's row (empty on an
    item's row, and everywhere with --no-omega)."""
    pytest.importorskip("scipy.optimize")
    src = str(FIXTURES / "alpha_answers.csv")
    data = {
        r["scale"]: r
        for r in json.loads(cli("reliability", src, "-i", "wai-s", "-f", "json").stdout)
    }
    rows = list(
        csv.DictReader(io.StringIO(cli("reliability", src, "-i", "wai-s", "-f", "csv").stdout))
    )
    scales = [r for r in rows if not r["item"]]
    assert {r["scale"]: float(r["omega_total"]) for r in scales} == {
        s: r["omega_total"] for s, r in data.items()
    }
    assert all(r["omega_total"] == "" for r in rows if r["item"])
    plain = cli("reliability", src, "-i", "wai-s", "-f", "csv", "--no-omega").stdout
    assert all(r["omega_total"] == "" for r in csv.DictReader(io.StringIO(plain)))


def test_the_summary_accounts_for_every_row_as_batch_does(cli):
    """Found as a user: on a REDCap export, reliability said '14 rows read, 10 scored, 0
    rejected', leaving 4 rows unaccounted for; batch says they were not administered."""
    from .conftest import ROOT

    export = str(ROOT / "examples" / "exports" / "redcap_wai_sr.csv")
    batch = cli("batch", export, "-i", "wai-sr", "-o", "-")
    assert "14 rows read, 10 scored, 0 rejected, 4 not administered" in batch.stderr
    runs = {
        "reliability": cli("reliability", export, "-i", "wai-sr", "-f", "csv"),
        "norms": cli("norms", export, "-i", "wai-sr", "-o", os.devnull),  # (refused: < 30)
    }
    for command, result in runs.items():
        said = f"{command}: 14 rows read, 10 scored, 0 rejected, 4 not administered;"
        assert said in result.stderr, result.stderr


def test_a_client_is_one_client_on_either_path(cli, tmp_path: Path):
    """Found in review: the fast path counted a row's client id stripped, the careful path
    (a cell the answer tables do not know) as written, so ' A' and 'A' were two clients."""
    header = "client_id,session," + ",".join(f"wai_{i}" for i in range(1, 13))
    rows = ["A,1," + ",".join("4" * 12), " A ,2, 4," + ",".join("4" * 11)]
    rows += [f"B{k},1," + ",".join("35"[k % 2] * 12) for k in range(4)]
    src = tmp_path / "two-paths.csv"
    src.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    result = cli("reliability", str(src), "-i", "wai-sr", "-f", "json", "--no-omega")
    assert "the 6 rows come from 5 clients (up to 2 each)" in result.stderr, result.stderr
