"""The batch fast path is proven equal to the full path: byte-identical outputs and rejects.

Both of its forms: row by row, and in blocks scored column by column (blocks of 1 to 7
lines here, so both alternate in one file; about a third of the examples take blocks).

Random instruments (reverse keys, overlapping subscales, totals over a subset, steps of
0.1 / 0.5 / 1 / 2, negative minimums, cutoffs, bands whose labels hold commas and quotes,
missing codes, both --invalid policies) and random rows drawn with repeats, so the memo
tables are hit. Each example is scored with the fast path on and off
(``ALLIANCE_NO_FASTPATH=1``); the fast run must have engaged (``Stats.fast``), the other not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliance_cli.batch.engine import NO_FASTPATH, BatchOptions
from alliance_cli.batch.run import run_files
from alliance_cli.core.definition import Instrument
from alliance_cli.core.scorer import Scorer

PROFILE = int(os.environ.get("ALLIANCE_DIFF_EXAMPLES", "120"))

STEPS = {0.1: [10, 20, 100], 0.5: [2, 4, 8], 1.0: [1, 4, 6], 2.0: [2, 3, 5]}
BAND_LABELS = ['low, "very"', "mid", '=odd "label"', "high,ish", "top"]


@st.composite
def instruments(draw: st.DrawFn) -> dict:
    """A valid instrument definition, drawn at random."""
    step = draw(st.sampled_from(sorted(STEPS)))
    points = draw(st.sampled_from(STEPS[step]))
    low = draw(st.sampled_from([-3.0, 0.0, 1.0]))
    high = round(low + step * points, 10)
    n = draw(st.integers(1, 9))
    ids = [str(i) for i in range(1, n + 1)]
    items = [{"id": i, "label": f"topic {i}", "reverse": draw(st.booleans())} for i in ids]
    subscales = []
    for k in range(draw(st.integers(0, 3))):
        members = draw(st.lists(st.sampled_from(ids), min_size=1, max_size=n, unique=True))
        subscales.append(
            {
                "id": f"s{k}",
                "name": f"Scale {k}",
                "dimension": draw(st.sampled_from(["goal", "task", "bond", "general"])),
                "items": members,
                "max_missing": draw(st.integers(0, len(members) - 1)),
            }
        )
    total_items = draw(
        st.one_of(st.none(), st.lists(st.sampled_from(ids), min_size=1, unique=True))
    )
    counted = len(total_items) if total_items else n
    total = {"items": total_items, "max_missing": draw(st.integers(0, counted - 1))}
    scales = {s["id"]: len(s["items"]) for s in subscales} | {"total": counted}
    cutoffs, bands = [], []
    for sid in draw(st.lists(st.sampled_from(sorted(scales)), max_size=3, unique=True)):
        metric = draw(st.sampled_from(["mean", "sum"]))
        factor = scales[sid] if metric == "sum" else 1
        lo, hi = low * factor, high * factor
        # thresholds on the grid of reachable values, so equality is really tested
        grid = round((hi - lo) / step)
        threshold = round(lo + step * draw(st.integers(1, max(grid, 1))), 10)
        cutoffs.append(
            {"scale": sid, "metric": metric, "threshold": threshold,
             "comparison": draw(st.sampled_from(["<", "<="])), "label": "low",
             "message": "Low.", "source": "test"}
        )  # fmt: skip
    for sid in draw(st.lists(st.sampled_from(sorted(scales)), max_size=2, unique=True)):
        metric = draw(st.sampled_from(["mean", "sum"]))
        factor = scales[sid] if metric == "sum" else 1
        lo, hi = low * factor, high * factor
        mins = sorted(
            {lo, *draw(st.lists(st.floats(lo, hi).map(lambda x: round(x, 1)), max_size=3))}
        )
        labels = draw(
            st.lists(st.sampled_from(BAND_LABELS), min_size=len(mins), max_size=len(mins))
        )
        if len(mins) >= 2:
            bands.append(
                {"scale": sid, "metric": metric, "source": "test",
                 "levels": [{"label": lab, "min": m} for lab, m in zip(labels, mins, strict=True)]}
            )  # fmt: skip
    return {
        "id": "rand",
        "name": "Random",
        "version": "1",
        "respondent": "client",
        "citation": "test",
        "licence": "test",
        "verification": {"status": "unverified", "sources": []},
        "scale": {"min": low, "max": high, "step": step, "labels": {low: "Never", high: "Always"}},
        "missing_codes": [
            {"value": "NA", "reason": "not_asked"},
            {"value": "-99", "reason": "refused"},
        ],
        "items": items,
        "subscales": subscales,
        "total": total,
        "cutoffs": cutoffs,
        "bands": bands,
    }


def _run(scorer: Scorer, data: Path, out: Path, rejects: Path, fmt: str, fast: bool) -> tuple:
    if fast:
        os.environ.pop(NO_FASTPATH, None)
    else:
        os.environ[NO_FASTPATH] = "1"
    try:
        stats, _ = run_files(
            [str(data)], scorer, fmt, out, rejects, BatchOptions(delimiter=","), lambda r: None
        )
    finally:
        os.environ.pop(NO_FASTPATH, None)
    return stats, out.read_bytes(), rejects.read_bytes()


@given(definition=instruments(), data=st.data(), invalid=st.sampled_from(["reject", "missing"]))
@settings(
    max_examples=PROFILE,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_fast_path_output_is_byte_identical(tmp_path: Path, definition, data, invalid):
    scorer = Scorer(Instrument.model_validate(definition), "sha", invalid)
    points = [f"{p:g}" for p in scorer.instrument.scale.points()]
    odd = ["", "NA", "-99", "x", "Always", " never ", "1e3", "99", f"{scorer.low - 1:g}"]
    cell = st.one_of(st.sampled_from(points), st.sampled_from(odd))
    n = len(scorer.item_ids)
    good = [points[0]] * n  # one plain row: the fast path must engage on it
    pool = [
        good,
        *data.draw(st.lists(st.lists(cell, min_size=n, max_size=n), min_size=1, max_size=8)),
    ]
    sessions = st.sampled_from(["1", "2", "12", "", "abc", "0", "²"])
    rows = [good, *data.draw(st.lists(st.sampled_from(pool), min_size=1, max_size=60))]
    # blocks of a few lines, so blocks taken column by column and blocks read row by row
    # alternate in one file; notes without quotes half the time (a quote stops the blocks)
    block = data.draw(st.sampled_from([1, 2, 3, 7, 2048]))
    notes = ["", "ok", "=1+2", "-3", "a;b"] + (
        ["a,b", 'say "hi"'] if data.draw(st.booleans()) else []
    )
    plain = data.draw(st.booleans())  # most rows plain: blocks of them are common
    newline = data.draw(st.sampled_from(["\n", "\r\n"]))
    lines = ["client_id,session,note," + ",".join(f"i{i}" for i in scorer.item_ids)]
    for k, row in enumerate(rows):
        session = "1" if k == 0 or plain else data.draw(sessions)
        note = "" if plain and k % 5 else data.draw(st.sampled_from(notes))
        quoted = '"' + note.replace('"', '""') + '"' if ("," in note or '"' in note) else note
        lines.append(f"c{k % 7},{session},{quoted}," + ",".join(good if plain and k % 4 else row))
        if data.draw(st.integers(0, 30)) == 0:
            lines.append("")  # a blank line
    src = tmp_path / "in.csv"
    src.write_text(newline.join(lines) + newline, encoding="utf-8", newline="")

    from alliance_cli.batch import engine

    engine.BLOCK_LINES, was = block, engine.BLOCK_LINES
    try:
        fast = _run(scorer, src, tmp_path / "fast.csv", tmp_path / "fast-rej.csv", "csv", True)
    finally:
        engine.BLOCK_LINES = was
    slow = _run(scorer, src, tmp_path / "slow.csv", tmp_path / "slow-rej.csv", "csv", False)
    ndjson = _run(scorer, src, tmp_path / "o.ndjson", tmp_path / "nd-rej.csv", "ndjson", True)
    assert fast[1] == slow[1]  # scored rows, byte for byte
    assert fast[2] == slow[2] == ndjson[2]  # rejects: same rows, lines and reasons
    assert fast[0].fast >= 1 and slow[0].fast == 0
    assert (fast[0].read, fast[0].scored, fast[0].rejected) == (
        slow[0].read, slow[0].scored, slow[0].rejected
    )  # fmt: skip
    assert ndjson[0].scored == fast[0].scored


def test_profile_is_large_enough_to_matter():
    assert PROFILE >= 50 or os.environ.get("ALLIANCE_DIFF_EXAMPLES")


@pytest.mark.parametrize("comparison", ["<", "<="])
def test_cutoff_at_the_threshold_agrees_in_both_paths(cli, tmp_path: Path, comparison):
    """0-10 by 0.1: rows summing to exactly 30, whose float sums are 30 +/- 4e-15."""
    yaml_text = f"""
id: vas
name: VAS test
version: "1"
respondent: client
citation: test
licence: test
verification: {{status: unverified, sources: []}}
scale: {{min: 0, max: 10, step: 0.1}}
items: [{{id: 1, label: a}}, {{id: 2, label: b}}, {{id: 3, label: c}}, {{id: 4, label: d}},
        {{id: 5, label: e}}, {{id: 6, label: f}}]
subscales:
  - {{id: first, name: First, dimension: goal, items: [1, 2, 3, 4]}}
  - {{id: rest, name: Rest, dimension: task, items: [5, 6]}}
metric: sum
cutoffs:
  - {{scale: total, metric: sum, threshold: 30, comparison: "{comparison}", label: Low,
     message: Low., source: test}}
"""
    inst = tmp_path / "inst"
    inst.mkdir()
    (inst / "vas.yaml").write_text(yaml_text, encoding="utf-8")
    exact = [
        "6.2,0.3,4.9,5.5,7.7,5.4",  # block sums give 30.000000000000004
        "3.7,1.5,9.5,4.2,9.2,1.9",  # a plain left-to-right sum gives 29.999999999999996
        "8.3,4.8,10,2.6,1.2,3.1",
    ]
    below = "8.3,4.8,10,2.6,1.2,3"  # 29.9
    src = tmp_path / "vas.csv"
    src.write_text(
        "id,i1,i2,i3,i4,i5,i6\n" + "".join(f"r{k},{r}\n" for k, r in enumerate([*exact, below]))
    )
    flagged_when_equal = comparison == "<="
    for fast in (True, False):
        env = {} if fast else {NO_FASTPATH: "1"}
        os.environ.update(env)
        try:
            result = cli("--instruments-dir", str(inst), "batch", str(src), "-i", "vas", "-q")
        finally:
            os.environ.pop(NO_FASTPATH, None)
        rows = result.stdout.splitlines()[1:]
        assert [r.split(",")[-3] for r in rows] == [
            *(["below_cutoff:total"] * 3 if flagged_when_equal else [""] * 3),
            "below_cutoff:total",
        ]
    for row in exact:
        score = cli("--instruments-dir", str(inst), "score", "vas", row, "-f", "json", "-q")
        flags = [f["code"] for f in __import__("json").loads(score.stdout)[0]["flags"]]
        assert flags == (["below_cutoff"] if flagged_when_equal else [])


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_plain_rows_are_scored_in_blocks_and_odd_ones_row_by_row(tmp_path: Path, newline):
    """A large export: its plain blocks are taken column by column; a block with a bad cell,
    a blank line, a not-administered row, a formula in a note or a quoted note is read row
    by row; the output, the rejects and the line numbers are the full path's."""
    from alliance_cli.io.catalog import load_catalog

    entry = load_catalog().get("wai-sr")
    scorer = Scorer(entry.instrument, entry.sha256)  # type: ignore[arg-type]
    lines = ["client_id,session,note," + ",".join(f"wai_{i}" for i in range(1, 13))]
    for k in range(9000):
        cells = [str((k * 7 + i * 3) % 5 + 1) for i in range(12)]
        note = ""
        if k % 1000 == 10:
            cells[k % 12] = "7"  # rejected
        if k % 1500 == 20:
            cells = [""] * 12  # not administered
        if k % 2500 == 30:
            note = "=SUM(A1)"  # neutralised by the careful path
        if k == 8000:
            note = '"a, b"'  # quoted: the blocks stop, the reader reads the rest
        lines.append(f"c{k % 300},{k % 20 + 1},{note}," + ",".join(cells))
        if k % 3000 == 40:
            lines.append("")
    src = tmp_path / "in.csv"
    src.write_text(newline.join(lines) + newline, encoding="utf-8", newline="")
    fast = _run(scorer, src, tmp_path / "fast.csv", tmp_path / "fast-rej.csv", "csv", True)
    slow = _run(scorer, src, tmp_path / "slow.csv", tmp_path / "slow-rej.csv", "csv", False)
    assert fast[1] == slow[1] and fast[2] == slow[2]
    assert fast[2].count(b"\n") == 1 + 9  # the header and each bad cell, once
    stats = fast[0]
    assert (stats.read, stats.scored, stats.rejected) == (9000, 9000 - 6 - 9, 9)
    assert stats.not_administered == 6
    # blocks of 2,048 lines; the first three (6,144 lines: 3 blank, rows 0-6140) are taken
    # but for their 15 odd rows (7 bad cells, 5 not administered, 3 formulas), each read in
    # place; the fourth holds the quote at row 8,000: from there the reader reads it all
    assert stats.by_block == 6141 - 15 and slow[0].by_block == 0


def test_blocks_with_semicolons_quote_a_kept_cell_holding_a_comma(tmp_path: Path):
    """A semicolon export (Excel in much of Europe): a pass-through cell may hold a comma,
    which the CSV output must quote; its block row is read by the careful path."""
    from alliance_cli.io.catalog import load_catalog

    entry = load_catalog().get("wai-sr")
    scorer = Scorer(entry.instrument, entry.sha256)  # type: ignore[arg-type]
    lines = ["client_id;session;note;" + ";".join(f"wai_{i}" for i in range(1, 13))]
    for k in range(3000):
        note = "Smith, J." if k % 700 == 5 else "ok"
        lines.append(f"c{k % 90};{k % 9 + 1};{note};" + ";".join(str(k % 5 + 1) for _ in range(12)))
    src = tmp_path / "in.csv"
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def run(fast: bool) -> tuple:
        os.environ.pop(NO_FASTPATH, None) if fast else os.environ.__setitem__(NO_FASTPATH, "1")
        try:
            out, rej = tmp_path / f"o{fast}.csv", tmp_path / f"r{fast}.csv"
            stats, _ = run_files([str(src)], scorer, "csv", out, rej, BatchOptions(), print)
        finally:
            os.environ.pop(NO_FASTPATH, None)
        return stats, out.read_bytes()

    (fast_stats, fast_out), (_, slow_out) = run(True), run(False)
    assert fast_out == slow_out and fast_out.count(b'"Smith, J."') == 5
    assert fast_stats.by_block == 3000 - 5  # every other row taken in blocks
