"""The signals, calibrated: a simulated caseload with known truth, read by alliance's rules.

    python bench/signals.py [--clients 1000] [--seeds 1 2 3 4 5] [--alpha-wai 0.90]

Each client answers a WAI-SR (12 items, 1-5) or an SRS (four 0-10 lines, to 0.1) after each
of 10 sessions. Answers are scored by alliance's own scorer and read by ``core.reading``,
the one reading every view shows. Item-level noise is set so that the simulated forms have
the instrument's published internal consistency (the alpha each run realises is printed):
WAI-SR .90 (WAI family, most often .92: Hanson, Curry & Bandalos, 2002; WAI-SR alpha > .80:
Munder et al., 2010) and SRS .88 (Duncan et al., 2003). The kinds of client, each drawn with
a true level (the mean item answer) that leaves room for a 30-point fall:
  stable    the true level never changes (only item-level noise);
  repaired  a rupture: 30 POMP down for one session (4-8), back the next;
  stays     a drop of 30 POMP at session 4-7 that stays to session 10;
  decline   a straight slide of 30 POMP from session 1 to 10;
  second    a rupture at session 4-5, repaired the next, then a drop of 30 POMP at 8-9
            that stays (is a second rupture named, and open at the end?).
Stable clients are drawn above any cutoff by at least 2 standard errors of measurement, so
an open concern on one is a false alarm; the rate for stable clients near the cutoff is
printed too (there a 'low' concern is the cutoff doing its job on noisy answers).
Targets (issue 19): stable with an open concern at the end <= 5 %; drops that stay, open at
the end >= 95 %; declines, open at the end >= 80 %; repaired ruptures, not open at the end
>= 90 %; ruptures named at their session >= 90 %. The second rupture's two rates are shown
(the issue set no target for them). 1,000 clients of each kind a seed: at 400, a rate near 4 %
has a binomial error of about a point, and the worst of five seeds passes 5 % by chance (the
stable SRS line: mean 4.0 %, worst seed 5.5 %, 22 of 400, where 1,000 a seed gives 4.5 %).

Then client and therapist: each client's counselor fills in the WAI-SR-T (10 items, 1-5,
simulated at the same alpha) after the same sessions. Pairs who agree share one true level,
drawn as a stable client's; pairs with a gap differ by 30 POMP on every item (either rater
higher; the lower from 30 POMP up), all 10 sessions.
Targets (alliance's own; the issue set none for gaps): agreeing pairs with an open gap at
the end <= 5 %; gaps of 30 POMP open at the end >= 80 %. The share of agreeing pairs with
any open concern on either form is printed too.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alliance_cli.core import reading
from alliance_cli.core.scorer import Scorer
from alliance_cli.io.catalog import load_catalog

SESSIONS = 10
DROP = 30.0  # POMP
KINDS = ("stable", "repaired", "stays", "decline", "second")


class Form:
    """One instrument's simulation: its scorer, spec, answer grid and noise."""

    def __init__(self, inst_id: str, alpha: float, spread: float, rater: str = "client") -> None:
        entry = load_catalog().get(inst_id)
        self.scorer = Scorer(entry.instrument, entry.sha256)
        self.rater = rater
        self.spec = reading.spec_of(entry.instrument, rater)
        self.low, self.high = entry.instrument.scale.min, entry.instrument.scale.max
        self.step = entry.instrument.scale.step
        self.k = len(entry.instrument.items)
        self.reversed = {n for n, item in enumerate(self.spec.items) if item in self.spec.reverse}
        # parallel items: alpha = k tau^2 / (k tau^2 + sigma^2), tau the between-client SD
        self.sigma = spread * (self.k * (1 - alpha) / alpha) ** 0.5
        self.spread = spread
        cut = self.spec.scales["total"].cutoff
        self.cut_item = None if cut is None else cut.threshold / self.k  # item level at cutoff

    def answers(self, rng: random.Random, level: float) -> list[str]:
        """One session's answers around a true item level (a reverse-keyed item answered
        the other way round, so that its scored value is around the level too)."""
        out = []
        for n in range(self.k):
            x = rng.gauss(level, self.sigma)
            x = min(self.high, max(self.low, round(x / self.step) * self.step))
            if n in self.reversed:
                x = self.low + self.high - x
            out.append(f"{x:g}" if self.step >= 1 else f"{x:.1f}")
        return out

    def visit(self, session: int, cells: list[str]) -> reading.Visit:
        """Score one session as alliance does and keep its POMPs."""
        results, _, noted = self.scorer.score_cells(cells)
        who = {"client_id": "X", "session": session, "date": None, "rater": self.rater}
        raws = [float(c) for c in cells]
        score = self.scorer.result_dict(results, noted, raws, who)
        pomps = {sid: s["pomp"] for sid, s in score["scales"].items()}
        return reading.Visit(session, None, pomps, None, tuple(raws))

    def pomp_to_item(self, pomp: float) -> float:
        """An item level for a POMP."""
        return self.low + pomp / 100 * (self.high - self.low)

    def sem_item(self) -> float:
        """The standard error of the total's item mean."""
        return self.sigma / self.k**0.5


def simulate(
    form: Form, kind: str, rng: random.Random, near_cut: bool = False
) -> dict[str, object]:
    """One client of a kind: their visits and the truth."""
    span = form.high - form.low
    floor = form.pomp_to_item(DROP + 30)  # room for the fall, and above an early-low default
    top = form.high - 0.025 * span  # many clients rate near the top
    if form.cut_item is not None:
        margin = form.cut_item + (0 if near_cut else 2) * form.sem_item()
        floor = max(floor, margin)
        top = max(top, floor + 0.1)
        if near_cut:
            top = form.cut_item + 2 * form.sem_item()
            floor = form.cut_item
    level = rng.uniform(floor, top)
    fall = DROP / 100 * span
    at = rng.randint(4, 8) if kind == "repaired" else rng.randint(4, 7)
    then = 0
    if kind == "second":
        at, then = rng.randint(4, 5), rng.randint(8, 9)
    levels: list[float] = []
    for s in range(1, SESSIONS + 1):
        if kind == "second":
            levels.append(level - (fall if s == at or s >= then else 0))
        elif kind == "repaired":
            levels.append(level - (fall if s == at else 0))
        elif kind == "stays":
            levels.append(level - (fall if s >= at else 0))
        elif kind == "decline":
            levels.append(level - fall * (s - 1) / (SESSIONS - 1))
        else:
            levels.append(level)
    visits = [form.visit(s, form.answers(rng, lv)) for s, lv in enumerate(levels, start=1)]
    return {"visits": visits, "at": at, "then": then}


def alpha_of(form: Form, rng: random.Random, n: int = 2000) -> float:
    """Cronbach's alpha of simulated first-session forms over n clients."""
    rows = []
    for _ in range(n):
        mid = form.low + 0.7 * (form.high - form.low)
        level = rng.gauss(mid, form.spread)
        answers = [float(x) for x in form.answers(rng, level)]
        # (scored: a reverse-keyed item turned back)
        rows.append([form.low + form.high - x if n in form.reversed else x
                     for n, x in enumerate(answers)])  # fmt: skip
    k = form.k
    items = list(zip(*rows, strict=True))
    item_var = sum(statistics.variance(c) for c in items)
    total_var = statistics.variance([sum(r) for r in rows])
    return k / (k - 1) * (1 - item_var / total_var)


def measure(form: Form, clients: int, seed: int) -> dict[str, float]:
    """The five rates (and the near-cutoff one) for one seed."""
    rng = random.Random(seed)
    settings = reading.Settings()
    out: dict[str, float] = {}

    def rate(
        kind: str, test: Callable[[reading.Reading, dict[str, object]], bool], near: bool = False
    ) -> float:
        hits = 0
        for _ in range(clients):
            sim = simulate(form, kind, rng, near)
            data = reading.SeriesData(form.spec, sim["visits"])  # type: ignore[arg-type]
            hits += test(reading.read_client("X", [data], settings), sim)
        return 100 * hits / clients

    label = form.spec.label
    out["stable open"] = rate("stable", lambda r, s: bool(r.open))
    out["stable trend"] = rate("stable", lambda r, s: r.trends[label] != "steady")
    out["decline trend"] = rate("decline", lambda r, s: r.trends[label] == "down")
    out["stays open"] = rate("stays", lambda r, s: bool(r.open))
    out["decline open"] = rate("decline", lambda r, s: bool(r.open))
    out["repaired closed"] = rate("repaired", lambda r, s: not r.open)
    out["rupture named"] = rate(
        "repaired", lambda r, s: any(c.kind == "drop" and c.began == s["at"] for c in r.concerns)
    )
    out["second named"] = rate(
        "second", lambda r, s: any(c.kind == "drop" and c.began == s["then"] for c in r.concerns)
    )
    out["second open"] = rate("second", lambda r, s: bool(r.open))
    if form.cut_item is not None:
        out["near-cut stable open"] = rate("stable", lambda r, s: bool(r.open), near=True)
    return out


GAP = 30.0  # POMP between the raters' true levels, in pairs with a gap


def simulate_pair(
    client: Form, therapist: Form, gap: bool, rng: random.Random
) -> list[reading.SeriesData]:
    """One client and their therapist over the sessions: both forms' series."""
    span = client.high - client.low
    apart = GAP / 100 * span if gap else 0.0
    # who agree are drawn as stable clients are (from 60 POMP: room for the early-low
    # default); with a gap the lower rater is from 30 POMP up (else the higher hits the top)
    floor = client.pomp_to_item(30) + apart if gap else client.pomp_to_item(DROP + 30)
    high = rng.uniform(floor, client.high - 0.025 * span)
    levels = (high, high - apart) if rng.random() < 0.5 else (high - apart, high)
    return [
        reading.SeriesData(
            form.spec, [form.visit(s, form.answers(rng, level)) for s in range(1, SESSIONS + 1)]
        )
        for form, level in zip((client, therapist), levels, strict=True)
    ]


def measure_pairs(client: Form, therapist: Form, pairs: int, seed: int) -> dict[str, float]:
    """The gap rule's rates (and any open concern of agreeing pairs) for one seed."""
    rng = random.Random(seed)
    out: dict[str, float] = {}
    for key, gap, test in (
        ("agree gap", False, lambda r: any(c.kind == "gap" for c in r.open)),
        ("agree any", False, lambda r: bool(r.open)),
        ("gap open", True, lambda r: any(c.kind == "gap" for c in r.open)),
    ):
        hits = sum(
            test(reading.read_client("X", simulate_pair(client, therapist, gap, rng)))
            for _ in range(pairs)
        )
        out[key] = 100 * hits / pairs
    return out


PAIR_TARGETS: dict[str, tuple[str, str, float | None]] = {
    "agree gap": ("client and therapist who agree, a gap open after 10 sessions", "<=", 5.0),
    "gap open": ("gaps of 30 POMP between them, open at the end", ">=", 80.0),
    "agree any": ("(who agree: any concern open on either form)", "<=", None),
}


TARGETS: dict[str, tuple[str, str, float | None]] = {
    "stable open": ("stable clients with an open concern after 10 sessions", "<=", 5.0),
    "stays open": ("drops of 30 POMP that stay, still open at the end", ">=", 95.0),
    "decline open": ("declines of 30 POMP over 10 sessions, open at the end", ">=", 80.0),
    "repaired closed": ("repaired ruptures, not open at the end", ">=", 90.0),
    "rupture named": ("ruptures named at their session in the history", ">=", 90.0),
    "stable trend": ("(stable clients shown with a trend, up or down, in `clients`)", "<=", None),
    "decline trend": ("(declines shown going down in `clients`)", ">=", None),
    "second named": ("(a second rupture, after a repaired one: named at its session)", ">=", None),
    "second open": ("(... a second that stays: open at the end)", ">=", None),
    "near-cut stable open": (
        "(stable within 2 SEM above the cutoff: open, mostly 'low')",
        "<=",
        None,
    ),
}


def main() -> None:
    """Print the calibration table: each rate's worst seed and its mean over the seeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="clients of each kind")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--alpha-wai", type=float, default=0.90)
    parser.add_argument("--alpha-srs", type=float, default=0.88)
    parser.add_argument(
        "--forms",
        nargs="+",
        metavar="ID",
        help="other forms instead, each simulated at --alpha-wai (e.g. wai wai-s haq-ii)",
    )
    args = parser.parse_args()
    forms = {
        "WAI-SR": Form("wai-sr", args.alpha_wai, 0.6),
        "SRS": Form("srs", args.alpha_srs, 0.8),
    }
    if args.forms:
        rater = {i: "therapist" if i.endswith("-t") else "client" for i in args.forms}
        forms = {i.upper(): Form(i, args.alpha_wai, 0.6, rater[i]) for i in args.forms}
    failed = False
    for name, form in forms.items():
        realised = alpha_of(form, random.Random(0))
        print(f"{name}: item noise SD {form.sigma:.2f}, realised alpha {realised:.3f}, "
              f"{args.clients} clients of each kind, seeds {args.seeds}")  # fmt: skip
        runs = [measure(form, args.clients, seed) for seed in args.seeds]
        failed |= table(TARGETS, runs)
    if args.forms:
        sys.exit(1 if failed else 0)
    therapist = Form("wai-sr-t", args.alpha_wai, 0.6, "therapist")
    realised = alpha_of(therapist, random.Random(0))
    print(f"WAI-SR with the WAI-SR-T: therapist item noise SD {therapist.sigma:.2f}, "
          f"realised alpha {realised:.3f}, {args.clients} pairs of each kind, "
          f"seeds {args.seeds}")  # fmt: skip
    runs = [measure_pairs(forms["WAI-SR"], therapist, args.clients, s) for s in args.seeds]
    failed |= table(PAIR_TARGETS, runs)
    sys.exit(1 if failed else 0)


def table(targets: dict[str, tuple[str, str, float | None]], runs: list[dict[str, float]]) -> bool:
    """Print one calibration table (mean and worst seed of each rate); whether any missed.
    A rate without a target is shown; its worst seed is still its worse side (``op``)."""
    failed = False
    print("| measure | target | mean | worst seed |\n|---|---|---|---|")
    for key, (label, op, goal) in targets.items():
        if key not in runs[0]:
            continue
        values = [r[key] for r in runs]
        mean = statistics.fmean(values)
        worst = min(values) if op == ">=" else max(values)
        met = goal is None or (worst <= goal if op == "<=" else worst >= goal)
        failed |= not met
        target = "(shown)" if goal is None else f"{op} {goal:g} %"
        print(f"| {label} | {target} | {mean:.1f} % | {worst:.1f} %{'' if met else ' MISSED'} |")
    print()
    return failed


if __name__ == "__main__":
    main()
