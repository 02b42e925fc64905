"""Our instruments as forms other systems build from: a REDCap data dictionary.

(The FHIR Questionnaire is in ``io.fhir``.) Both carry our item labels, never published
wording, with the citation, the verification level and the licence note.
"""

from __future__ import annotations

from typing import Any

# The 18 columns of REDCap's data dictionary (the UI/ZIP download; the API names them
# field_name, form_name, ...). Checked against ../shared/real-formats/redcap.
REDCAP_COLUMNS = [
    "Variable / Field Name",
    "Form Name",
    "Section Header",
    "Field Type",
    "Field Label",
    "Choices, Calculations, OR Slider Labels",
    "Field Note",
    "Text Validation Type OR Show Slider Number",
    "Text Validation Min",
    "Text Validation Max",
    "Identifier?",
    "Branching Logic (Show field only if...)",
    "Required Field?",
    "Custom Alignment",
    "Question Number (surveys only)",
    "Matrix Group Name",
    "Matrix Ranking?",
    "Field Annotation",
]


def redcap_name(text: str) -> str:
    """A legal REDCap variable or form name from any text: lower-case ASCII letters, digits
    and underscores, starting with a letter (``9item_b-2`` -> ``f_9item_b_2``)."""
    name = "".join(ch if ch.isascii() and ch.isalnum() else "_" for ch in text.lower())
    name = "_".join(part for part in name.split("_") if part) or "f"
    return name if name[0].isalpha() else f"f_{name}"


def redcap_form_name(instrument_id: str) -> str:
    """REDCap's form (and variable prefix) for an instrument: ``wai-sr`` -> ``wai_sr``."""
    return redcap_name(instrument_id)


def redcap_choice(text: str) -> str:
    """An anchor label as one REDCap choice: ``|`` separates choices, so it becomes ``/``."""
    return " ".join(text.replace("|", "/").split())


def redcap_dictionary(instrument: Any, sha256: str, record_id: bool = True) -> list[list[str]]:
    """The data dictionary rows (with the header) of a REDCap form for the instrument.

    Its variables are ``<form>_<item>`` (``wai_sr_1``), which ``alliance batch`` detects in
    REDCap's records export with no options; the session is counted per record in event
    order (or given by ``--sessions``). Each scale gets a ``calc`` field that computes
    alliance's score (reverse keys, the missing-answer rule, the metric). Without
    ``record_id`` (``--no-record-id``) the rows can be appended to another form's.
    """
    form = redcap_form_name(instrument.id)
    variables: dict[str, str] = {}  # item id -> its variable, made unique
    for item in instrument.items:
        name = f"{form}_{redcap_name(str(item.id)).removeprefix('f_')}"
        while name in variables.values():
            name += "_"
        variables[str(item.id)] = name
    scale = instrument.scale
    whole = float(scale.step).is_integer() and float(scale.min).is_integer()

    def row(name: str, kind: str, label: str, **extra: str) -> list[str]:
        cells = dict.fromkeys(REDCAP_COLUMNS, "")
        cells.update(
            {
                "Variable / Field Name": name,
                "Form Name": form,
                "Field Type": kind,
                "Field Label": label,
            }
        )
        cells.update(extra)
        return [cells[c] for c in REDCAP_COLUMNS]

    level = instrument.verification.status
    intro = (
        f"{instrument.name} ({instrument.short_name or instrument.id}): scoring structure from "
        f"alliance (key {level}; definition SHA-256 {sha256[:12]}). The item texts are short "
        f"labels in alliance's own words, not the published wording. Licence: "
        f"{' '.join(instrument.licence.split())} Source: {' '.join(instrument.citation.split())}"
    )
    rows = [
        REDCAP_COLUMNS,
        *([row("record_id", "text", "Record ID")] if record_id else []),
        row(f"{form}_about", "descriptive", intro),
        row(
            f"{form}_session_date",
            "text",
            "Session date",
            **{"Text Validation Type OR Show Slider Number": "date_ymd"},
        ),
        row(f"{form}_counselor", "text", "Counselor"),
    ]
    if whole:
        choices = " | ".join(
            f"{value_text(v)}, {redcap_choice(scale.labels.get(v, value_text(v)))}"
            for v in scale.points()
        )
        for item in instrument.items:
            rows.append(
                row(
                    variables[str(item.id)],
                    "radio",
                    item.label,
                    **{
                        "Choices, Calculations, OR Slider Labels": choices,
                        "Matrix Group Name": form,
                    },
                )
            )
    else:
        decimals = max(0, len(value_text(scale.step).partition(".")[2]))
        validation = "number" if decimals == 0 else f"number_{decimals}dp"
        for item in instrument.items:
            rows.append(
                row(
                    variables[str(item.id)],
                    "text",
                    item.label,
                    **{
                        "Text Validation Type OR Show Slider Number": validation,
                        "Text Validation Min": value_text(scale.min),
                        "Text Validation Max": value_text(scale.max),
                        "Field Note": f"{value_text(scale.min)} to {value_text(scale.max)}",
                    },
                )
            )
    if instrument.verification.status != "draft":  # a draft has no key: nothing to compute
        rows += _calc_rows(instrument, form, variables, row)
    return rows


def scale_rules(instrument: Any) -> list[tuple[str, str, list[str], int]]:
    """Each scale a form's exports compute (the subscales, then the total): its id, name,
    item ids and how many of them may be unanswered."""
    rules = [(s.id, s.name, [str(i) for i in s.items], s.max_missing)
             for s in instrument.subscales]  # fmt: skip
    total = instrument.total
    rules.append(("total", total.name, [str(i) for i in instrument.total_items()],
                  total.max_missing))  # fmt: skip
    return rules


def _calc_rows(instrument: Any, form: str, variables: dict[str, str], row: Any) -> list[list[str]]:
    """One ``calc`` field per scale (the subscales, then the total): alliance's score in
    REDCap's calculation syntax. An item's value is its answer, reversed where keyed
    (``if([v]<>"", min+max-[v], "")``); the score is blank when more than ``max_missing``
    are unanswered, else the mean of those answered (``mean()`` leaves blanks out), times
    the scale's items for a sum (prorated, as alliance)."""
    scale = instrument.scale
    top = value_text(scale.min + scale.max)
    keyed = {str(item.id): item.reverse for item in instrument.items}
    out = []
    for sid, name, items, max_missing in scale_rules(instrument):
        values = [
            f'if([{variables[i]}]<>"", {top}-[{variables[i]}], "")'
            if keyed[i]
            else f"[{variables[i]}]"
            for i in items
        ]
        answered = "sum(" + ", ".join(f'if([{variables[i]}]<>"", 1, 0)' for i in items) + ")"
        score = f"mean({', '.join(values)})"
        if instrument.metric == "sum":
            score += f"*{len(items)}"
        equation = f'if({answered} >= {len(items) - max_missing}, {score}, "")'
        rows = row(
            f"{form}_{redcap_name(sid).removeprefix('f_')}_{instrument.metric}",
            "calc",
            f"{name} ({instrument.metric}; at most {max_missing} unanswered)",
            **{"Choices, Calculations, OR Slider Labels": equation},
        )
        out.append(rows)
    return out


def value_text(value: float) -> str:
    """A scale value as a form shows it: ``4``, ``0.5``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
