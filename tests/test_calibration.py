"""The calibration bench's own simulation, kept honest: bench/signals.py runs, and on a fixed
seed the rules hold the targets it publishes (the README's table is its full run: 400 of each
kind over five seeds; here fewer, on one seed, so the bounds have some room).

A rule that regresses to raising what noise alone makes (the old 15-POMP gap rule left 58 % of
agreeing client-therapist pairs with an open gap) fails here, not only when someone reruns the
bench.
"""

from __future__ import annotations

import random
import subprocess
import sys
from typing import Any

from alliance_cli.core import reading

from .conftest import ROOT, bench_module


def _signals() -> Any:
    return bench_module("signals")


def test_agreeing_client_and_therapist_rarely_end_with_a_gap_and_real_gaps_are_found():
    signals = _signals()
    client = signals.Form("wai-sr", 0.90, 0.6)
    therapist = signals.Form("wai-sr-t", 0.90, 0.6, "therapist")
    rates = signals.measure_pairs(client, therapist, 150, seed=11)
    assert rates["agree gap"] <= 6.0, rates  # target 5 % (mean 2.2 % over 5 x 400)
    assert rates["gap open"] >= 70.0, rates  # target 80 % (mean 81.9 % over 5 x 400)


def test_simulated_pairs_are_what_the_bench_says():
    # pairs who agree share one level; a gap is 30 POMP between the raters' levels
    signals = _signals()
    client = signals.Form("wai-sr", 0.90, 0.6)
    therapist = signals.Form("wai-sr-t", 0.90, 0.6, "therapist")
    rng = random.Random(3)
    for gap, apart in ((False, 0.0), (True, 30.0)):
        totals = [[], []]
        for _ in range(60):
            for n, series in enumerate(signals.simulate_pair(client, therapist, gap, rng)):
                assert series.spec.rater == ("client", "therapist")[n]
                totals[n].append(
                    sum(v.pomps[reading.TOTAL] for v in series.visits) / len(series.visits)
                )
        differences = [abs(c - t) for c, t in zip(*totals, strict=True)]
        assert abs(sum(differences) / len(differences) - apart) < 6.0, (gap, differences[:5])


def test_the_bench_runs_and_prints_its_three_tables():
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "signals.py"), "--clients", "20", "--seeds", "1"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr  # (20 clients: a target may miss by chance)
    for heading in ("WAI-SR: item noise SD", "SRS: item noise SD", "WAI-SR with the WAI-SR-T"):
        assert heading in done.stdout
    assert "| client and therapist who agree, a gap open after 10 sessions | <= 5 % |" in (
        done.stdout
    )


def test_one_form_holds_its_targets_on_a_fixed_seed():
    signals = _signals()
    for form in (signals.Form("wai-sr", 0.90, 0.6), signals.Form("srs", 0.88, 0.8)):
        rates = signals.measure(form, 100, seed=11)
        assert rates["stable open"] <= 7.0, rates  # target 5 %
        assert rates["stays open"] >= 93.0, rates  # target 95 %
        assert rates["decline open"] >= 75.0, rates  # target 80 %
        assert rates["repaired closed"] >= 88.0, rates  # target 90 %
        assert rates["rupture named"] >= 88.0, rates  # target 90 %
        # a second rupture after a repaired one (shown, no target): the rupture itself in the
        # noise and the usual level named it for 27 % of WAI-SR and 49 % of SRS clients
        assert rates["second named"] >= (60.0 if form.spec.instrument == "wai-sr" else 90.0)
        # the trend `clients` shows: the fitted line's plain direction showed one for two
        # stable WAI-SR clients in three
        assert rates["stable trend"] <= 10.0, rates
        assert rates["decline trend"] >= (65.0 if form.spec.instrument == "wai-sr" else 90.0)


def test_a_form_of_one_scale_holds_its_targets_on_a_fixed_seed():
    """The HAQ-II (one scale: Student's t, and the cap sparing only a floor threshold from
    few changes): with the z and the cap at any threshold, 8.5 % of stable clients ended
    with something open and a second rupture was named for 27.5 % (bench/signals.py)."""
    signals = _signals()
    rates = signals.measure(signals.Form("haq-ii", 0.90, 0.6), 200, seed=11)
    assert rates["stable open"] <= 6.0, rates  # target 5 %
    assert rates["rupture named"] >= 88.0, rates  # target 90 %
    assert rates["stays open"] >= 93.0 and rates["repaired closed"] >= 88.0, rates
    assert rates["second named"] >= 65.0, rates
