"""Pure scoring: an Instrument compiles once into a Scorer; the Scorer turns answers into scores.

No pydantic here: the Scorer runs on the validated model or on its plain form from the
compiled cache alike (both have the views in ``structure.py``).

No I/O, no printing. The hot path (``Scorer.score_cells``) uses lookup tables built once
per instrument and plain tuples; the pydantic ``Score`` is built only when asked for.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date as _date
from itertools import repeat
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from alliance_cli.core.compiled import TOTAL, BandSet, CompiledInstrument, Cutoff
from alliance_cli.core.contract import SCHEMA_VERSION, respondent_dict
from alliance_cli.core.errors import AnswerProblem, DraftInstrument, RejectedInput, UsageProblem
from alliance_cli.core.words import counted

if TYPE_CHECKING:
    from alliance_cli.core.score import Respondent, Score

DIGITS = 6  # scores are rounded to 6 decimals in output: float noise, never information
InvalidPolicy = Literal["reject", "missing"]
_UNKNOWN: Any = object()  # a cell no answer table knows: parsed the careful way
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:[.,][0-9]*)?|[.,][0-9]+)\Z")


# -- compiled form -------------------------------------------------------------------------
class ScaleResult(NamedTuple):
    """Hot-path result for one scale."""

    mean: float | None
    sum: float | None
    answered: int
    prorated: bool


class _ScalePlan(NamedTuple):
    id: str
    name: str
    dimension: str
    positions: tuple[int, ...]
    max_missing: int


def _number_forms(value: float) -> list[str]:
    """Text forms a spreadsheet or a person might write for a scale point."""
    forms = {f"{value:g}", repr(value), f"{value:.1f}", f"{value:.2f}"}
    if float(value).is_integer():
        forms.add(str(int(value)))
    forms |= {f.replace(".", ",") for f in list(forms)}
    return sorted(forms)


def _fmt(value: float) -> str:
    return f"{value:g}"


def _q(text: str) -> str:
    """Quote an answer as users type it: double quotes, no escapes."""
    return f'"{text}"'


def below_cutoff(value: float, comparison: str, threshold: float) -> bool:
    """The one cutoff rule: compare the value as it is reported (rounded to DIGITS decimals).

    The scorer, the batch fast path and the change analysis all call this, so a score shown
    as 36 is never flagged by a "< 36" rule because its float sum was 35.99999999999999.
    """
    shown = round(value, DIGITS)
    return shown < threshold if comparison == "<" else shown <= threshold


class SupportsDump(Protocol):
    """A validated pydantic instrument model (anything with a JSON ``model_dump``)."""

    def model_dump(self, *, mode: str) -> dict[str, Any]:
        """The model as JSON data."""
        ...


def compile_instrument(instrument: CompiledInstrument | SupportsDump) -> CompiledInstrument:
    """The compiled form of a validated model (a compiled instrument is returned as is)."""
    if isinstance(instrument, CompiledInstrument):
        return instrument
    return CompiledInstrument.from_data(instrument.model_dump(mode="json"))


def verification_notice(instrument: CompiledInstrument) -> str | None:
    """The one-line notice for a key below verified (None for a verified one)."""
    level = instrument.verification.status
    if level == "verified":
        return None
    what = {
        "derived": "derived from a verified parent key, not itself verified",
        "unverified": "unverified (single source, or not confirmed)",
    }.get(level, level)
    return (
        f"note: the {instrument.id} scoring key is {what}; "
        f"see 'alliance instruments show {instrument.id}'"
    )


def validate_date(text: str | None, option: str = "") -> str | None:
    """Check an ISO date (YYYY-MM-DD) and return it, or raise UsageProblem (naming the
    ``option`` it came from, when given)."""
    if text is None or text == "":
        return None
    try:
        return _date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        where = f"{option}: " if option else ""
        raise UsageProblem(f"{where}date {text!r} {date_problem(text.strip())}") from None


def date_problem(text: str) -> str:
    """What is wrong with a date that is not an ISO date, in words (month 13, 30 February)."""
    import calendar
    import re

    found = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text)
    if found is None:
        return "is not an ISO date (YYYY-MM-DD)"
    year, month, day = (int(g) for g in found.groups())
    if not 1 <= month <= 12:
        return f"has month {month}: a month is 1 to 12 (YYYY-MM-DD)"
    days = calendar.monthrange(year, month)[1] if year >= 1 else 31
    if not 1 <= day <= days:
        return f"has day {day}: {calendar.month_name[month]} {year} has {days} days"
    return "is not an ISO date (YYYY-MM-DD, with two-digit month and day)"


class Scorer:
    """An Instrument compiled for fast scoring: lookup tables per item, index lists per scale."""

    def __init__(
        self,
        instrument: CompiledInstrument | SupportsDump,
        sha256: str = "",
        invalid: InvalidPolicy = "reject",
    ) -> None:
        instrument = compile_instrument(instrument)
        if instrument.verification.status == "draft":
            raise DraftInstrument(instrument.id)
        self.instrument = instrument
        self.sha256 = sha256
        self.invalid = invalid
        scale = instrument.scale
        self.low, self.high, self.step = scale.min, scale.max, scale.step
        self.item_ids: list[str] = instrument.item_ids()
        self.position = {item_id: i for i, item_id in enumerate(self.item_ids)}
        self.reverse = [item.reverse for item in instrument.items]
        self.missing_codes = {m.value.strip().lower(): m.reason for m in instrument.missing_codes}
        self.labels = {text.strip().lower(): value for value, text in scale.labels.items()}
        # text -> float (keyed answer) or str (missing reason); one table per item
        self.cell_tables: list[dict[str, float | str]] = []
        # text -> raw answer before keying, shared by every item
        self.raw_table: dict[str, float] = {}
        for value in scale.points():
            for form in _number_forms(value):
                self.raw_table[form] = value
        for text, value in self.labels.items():
            self.raw_table[text] = value
        for rev in self.reverse:
            table: dict[str, float | str] = {"": "blank"}
            for text, value in self.raw_table.items():
                table[text] = self._key(value, rev)
            for text, reason in self.missing_codes.items():
                table[text] = reason
            self.cell_tables.append(table)
        # text -> keyed answer, or None when missing (blank or a missing code): answers only
        self.answer_tables: list[dict[str, float | None]] = [
            {text: None if value.__class__ is str else value for text, value in t.items()}  # type: ignore[misc]
            for t in self.cell_tables
        ]
        self.plans: list[_ScalePlan] = [
            _ScalePlan(
                s.id,
                s.name,
                s.dimension,
                tuple(self.position[i] for i in s.items),
                s.max_missing,
            )
            for s in instrument.subscales
        ]
        self.plans.append(
            _ScalePlan(
                TOTAL,
                instrument.total.name,
                "general",
                tuple(self.position[i] for i in instrument.total_items()),
                instrument.total.max_missing,
            )
        )
        self.norm = instrument.norms[0] if instrument.norms else None
        self.bands: dict[str, BandSet] = {}
        for band in instrument.bands:
            self.bands.setdefault(band.scale, band)
        self.cutoffs: dict[str, list[Cutoff]] = {}
        for cut in instrument.cutoffs:
            self.cutoffs.setdefault(cut.scale, []).append(cut)

    # -- single answers ------------------------------------------------------------------
    def _key(self, value: float, reverse: bool) -> float:
        return round(self.low + self.high - value, 10) if reverse else value

    def parse(self, position: int, cell: Any) -> tuple[float | None, str | None, str | None]:
        """Read one answer: (raw value, missing reason, problem). Never raises."""
        if cell is None:
            return None, "blank", None
        if isinstance(cell, bool):
            return None, None, f"{_q(str(cell).lower())} is not an answer"
        if isinstance(cell, int | float):
            text = repr(cell) if isinstance(cell, float) else str(cell)
            number = float(cell)
        else:
            text = str(cell)
            key = text.strip().lower()
            if key == "":
                return None, "blank", None
            if key in self.missing_codes:
                return None, self.missing_codes[key], None
            if key in self.raw_table:
                return self.raw_table[key], None, None
            if _DECIMAL.match(key) is None:  # plain decimals only: not 1_0, 1e1, inf or nan
                return None, None, f"{_q(text.strip())} is not a number or an anchor of this scale"
            number = float(key.replace(",", "."))
        if math.isnan(number) or math.isinf(number):
            return None, None, f"{_q(text)} is not a number"
        if number < self.low - 1e-9 or number > self.high + 1e-9:
            return None, None, f"{_q(text.strip())} is outside {_fmt(self.low)}–{_fmt(self.high)}"
        steps = (number - self.low) / self.step
        if abs(steps - round(steps)) > 1e-6:
            return (
                None,
                None,
                f"{_q(text.strip())} is not a step of {_fmt(self.step)} on this scale",
            )
        return round(self.low + round(steps) * self.step, 10), None, None

    def keyed(self, position: int, raw: float) -> float:
        """The scored value of a raw answer (reverse keys applied)."""
        return self._key(raw, self.reverse[position])

    # -- hot path ------------------------------------------------------------------------
    def keyed_answers(self, cells: Sequence[str]) -> tuple[list[float | None], list[AnswerProblem]]:
        """Keyed answers of a row of cells in item order (None where missing), and the
        problems that reject it: plain cells by table look-up, the rest parsed."""
        values = list(map(dict.get, self.answer_tables, cells, repeat(_UNKNOWN)))
        if _UNKNOWN not in values:
            return values, []  # (no _UNKNOWN left, by the test: floats and None)
        keyed, problems, _ = self.keyed_cells(cells)
        return keyed, problems

    def keyed_cells(
        self, cells: Sequence[Any]
    ) -> tuple[list[float | None], list[AnswerProblem], list[AnswerProblem]]:
        """Read answers given in item order: (keyed values, None where missing; rejecting
        problems; issues treated as missing)."""
        keyed: list[float | None] = []
        problems: list[AnswerProblem] = []
        noted: list[AnswerProblem] = []
        append = keyed.append
        for pos, (table, cell) in enumerate(zip(self.cell_tables, cells, strict=True)):
            hit = table.get(cell) if cell.__class__ is str else None
            if hit is not None:
                if hit.__class__ is float:
                    append(hit)  # type: ignore[arg-type,unused-ignore]  # a float, by class
                else:
                    append(None)
                    if hit != "blank":
                        noted.append(AnswerProblem(self.item_ids[pos], cell, f"missing ({hit})"))
                continue
            raw, reason, problem = self.parse(pos, cell)
            if problem is not None:
                append(None)
                bad = AnswerProblem(self.item_ids[pos], "" if cell is None else str(cell), problem)
                (problems if self.invalid == "reject" else noted).append(bad)
            elif raw is None:
                append(None)
                if reason != "blank":
                    noted.append(
                        AnswerProblem(self.item_ids[pos], str(cell), f"missing ({reason})")
                    )
            else:
                append(self.keyed(pos, raw))
        return keyed, problems, noted

    def score_cells(
        self, cells: Sequence[Any]
    ) -> tuple[list[ScaleResult | None], list[AnswerProblem], list[AnswerProblem]]:
        """Score answers given in item order.

        Returns (results per scale plan, rejecting problems, issues treated as missing).
        When the policy is "reject" and any answer is bad, results are empty.
        """
        keyed, problems, noted = self.keyed_cells(cells)
        if problems:
            return [], problems, noted
        return [self._scale(plan, keyed) for plan in self.plans], problems, noted

    def _scale(self, plan: _ScalePlan, keyed: list[float | None]) -> ScaleResult | None:
        values = [v for v in (keyed[p] for p in plan.positions) if v is not None]
        answered = len(values)
        n = len(plan.positions)
        if n - answered > plan.max_missing:
            return ScaleResult(None, None, answered, False)
        raw_sum = math.fsum(values)
        mean = raw_sum / answered
        prorated = answered < n
        return ScaleResult(mean, mean * n if prorated else raw_sum, answered, prorated)

    # -- full result ---------------------------------------------------------------------
    def answers_in_order(self, answers: Mapping[str, Any] | Sequence[Any]) -> list[Any]:
        """Line answers up in item order from a mapping (by item id) or a sequence."""
        if isinstance(answers, Mapping):
            unknown = [str(k) for k in answers if str(k) not in self.position]
            if unknown:
                raise UsageProblem(
                    f"no item {', '.join(unknown)} in {self.instrument.id} "
                    f"(items are {', '.join(self.item_ids)})"
                )
            by_id = {str(k): v for k, v in answers.items()}
            return [by_id.get(i) for i in self.item_ids]
        values = list(answers)
        if len(values) != len(self.item_ids):
            raise UsageProblem(
                f"{self.instrument.id} has {counted(len(self.item_ids), 'item')}; got "
                f"{counted(len(values), 'answer')}"
            )
        return values

    def score(
        self,
        answers: Mapping[str, Any] | Sequence[Any],
        respondent: Respondent | None = None,
    ) -> Score:
        """Score one response set. Raises RejectedInput when an answer is unusable."""
        from alliance_cli.core.score import Score

        who = respondent.model_dump(mode="json") if respondent is not None else None
        return Score.model_validate(self.score_dict(answers, who))

    def score_dict(
        self,
        answers: Mapping[str, Any] | Sequence[Any],
        respondent: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """``score`` as plain JSON-ready data, without building pydantic models (fast path)."""
        cells = self.answers_in_order(answers)
        results, problems, noted = self.score_cells(cells)
        if problems:
            raise RejectedInput(problems)
        raws = [self.parse(i, c)[0] for i, c in enumerate(cells)]
        return self.result_dict(results, noted, raws, respondent or respondent_dict())

    def result_dict(
        self,
        results: Sequence[ScaleResult | None],
        noted: Sequence[AnswerProblem],
        raws: Sequence[float | None],
        respondent: dict[str, Any],
    ) -> dict[str, Any]:
        """The Score as plain JSON-ready data (what ``Score.model_dump(mode='json')`` gives)."""
        inst = self.instrument
        scales: dict[str, Any] = {}
        flags: list[dict[str, str]] = []
        for plan, res in zip(self.plans, results, strict=True):
            scales[plan.id] = self._scale_dict(plan, res)
            flags += self._cutoff_flags(plan.id, res)
        return {
            "schema_version": SCHEMA_VERSION,
            "instrument": {
                "id": inst.id,
                "name": inst.name,
                "version": inst.version,
                "sha256": self.sha256,
                "verification": inst.verification.status,
                "scoring_licence": inst.scoring_licence,
            },
            "respondent": respondent,
            "metric": inst.metric,
            "scales": scales,
            "flags": flags,
            "issues": [
                {"item": p.item, "value": p.value, "problem": p.problem, "treated_as": "missing"}
                for p in noted
            ],
            "answers": dict(zip(self.item_ids, raws, strict=True)),
        }

    def view_dict(self, cells: Sequence[Any]) -> dict[str, Any]:
        """What the history's views read of a stored session's Score (the verification,
        the metric, each scale's name, mean, sum and POMP, the flags), as ``score_dict``
        gives them, without the rest: a long history reads many."""
        results, problems, _ = self.score_cells(cells)
        if problems:
            raise RejectedInput(problems)
        scales: dict[str, Any] = {}
        flags: list[dict[str, str]] = []
        for plan, res in zip(self.plans, results, strict=True):
            if res is None or res.mean is None:
                scales[plan.id] = {"name": plan.name, "mean": None, "sum": None, "pomp": None}
            else:
                scales[plan.id] = {
                    "name": plan.name,
                    "mean": round(res.mean, DIGITS),
                    "sum": round(res.sum, DIGITS) if res.sum is not None else None,
                    "pomp": round(self.pomp(res.mean), DIGITS),
                }
            if plan.id in self.cutoffs:
                flags += self._cutoff_flags(plan.id, res)
        inst = self.instrument
        return {
            "instrument": {"id": inst.id, "verification": inst.verification.status},
            "metric": inst.metric,
            "scales": scales,
            "flags": flags,
        }

    def _scale_dict(self, plan: _ScalePlan, res: ScaleResult | None) -> dict[str, Any]:
        n = len(plan.positions)
        out: dict[str, Any] = {
            "name": plan.name,
            "dimension": plan.dimension,
            "mean": None,
            "sum": None,
            "answered": res.answered if res else 0,
            "items": n,
            "prorated": bool(res and res.prorated),
            "pomp": None,
            "z": None,
            "percentile": None,
            "band": None,
            "missing_reason": None,
        }
        if res is None or res.mean is None:
            answered = res.answered if res else 0
            out["missing_reason"] = (
                f"{n - answered} of {n} items missing; at most {plan.max_missing} allowed"
            )
            return out
        out["mean"] = round(res.mean, DIGITS)
        out["sum"] = round(res.sum, DIGITS) if res.sum is not None else None
        out["pomp"] = round(self.pomp(res.mean), DIGITS)
        z = self.z(plan.id, res)
        if z is not None:
            out["z"] = round(z, DIGITS)
            out["percentile"] = round(50 * (1 + math.erf(z / math.sqrt(2))), 1)
        out["band"] = self.band(plan.id, res)
        return out

    def pomp(self, mean: float) -> float:
        """Percent of maximum possible of an item mean."""
        return (mean - self.low) / (self.high - self.low) * 100

    def value_in(self, res: ScaleResult, metric: str) -> float | None:
        """A scale result in the metric a norm, band or cutoff is stated in."""
        return res.mean if metric == "mean" else res.sum

    def z(self, scale_id: str, res: ScaleResult) -> float | None:
        """z-score against the first norm sample, when it covers this scale."""
        if self.norm is None or scale_id not in self.norm.scales:
            return None
        ref = self.norm.scales[scale_id]
        value = self.value_in(res, self.norm.metric)
        return None if value is None else (value - ref.mean) / ref.sd

    def band(self, scale_id: str, res: ScaleResult) -> str | None:
        """The label of the band this result falls in, if the instrument defines bands."""
        bands = self.bands.get(scale_id)
        if bands is None:
            return None
        value = self.value_in(res, bands.metric)
        if value is None:
            return None
        label = None
        for level in bands.levels:
            if value >= level.min - 1e-9:
                label = level.label
        return label

    def cutoff_hits(self, scale_id: str, res: ScaleResult | None) -> list[Cutoff]:
        """The cutoffs a scale result is below, by the one cutoff rule."""
        if res is None or res.mean is None:
            return []
        hits = []
        for cut in self.cutoffs.get(scale_id, ()):
            value = self.value_in(res, cut.metric)
            if value is not None and below_cutoff(value, cut.comparison, cut.threshold):
                hits.append(cut)
        return hits

    def flag_codes(self, results: Sequence[ScaleResult | None]) -> list[str]:
        """Hot path: 'code:scale' of each cutoff flag the results raise."""
        return [
            f"below_cutoff:{plan.id}"
            for plan, res in zip(self.plans, results, strict=True)
            for _ in self.cutoff_hits(plan.id, res)
        ]

    def _cutoff_flags(self, scale_id: str, res: ScaleResult | None) -> list[dict[str, str]]:
        return [
            {
                "code": "below_cutoff",
                "scale": scale_id,
                "rule": f"{cut.metric} {cut.comparison} {_fmt(cut.threshold)} ({cut.source})",
                "message": " ".join(cut.message.split()),
            }
            for cut in self.cutoff_hits(scale_id, res)
        ]
