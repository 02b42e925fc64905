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


def redcap_form_name(instrument_id: str) -> str:
    """REDCap's form (and variable prefix) for an instrument: ``wai-sr`` -> ``wai_sr``."""
    return "".join(ch if ch.isalnum() else "_" for ch in instrument_id.lower())


def redcap_dictionary(instrument: Any, sha256: str) -> list[list[str]]:
    """The data dictionary rows (with the header) of a REDCap form for the instrument.

    Its variables are ``<form>_<item>`` (``wai_sr_1``), which ``alliance batch`` detects in
    REDCap's records export with no options; the session is the repeat instance (make the
    form repeating) or a number in the event name.
    """
    form = redcap_form_name(instrument.id)
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
        row("record_id", "text", "Record ID"),
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
            f"{value_text(v)}, {scale.labels.get(v, value_text(v))}" for v in scale.points()
        )
        for item in instrument.items:
            rows.append(
                row(
                    f"{form}_{item.id}",
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
                    f"{form}_{item.id}",
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
    return rows


def value_text(value: float) -> str:
    """A scale value as a form shows it: ``4``, ``0.5``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))
