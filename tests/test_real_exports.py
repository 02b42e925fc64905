"""Issue 23, item 1: never score what is not an item. REDCap checkbox choices, status and
timestamp columns are never items; a numbered family whose prefix names no alliance
instrument (pmq1..pmq4) is not taken as a form's items until --columns or --map says so.

The real samples are read from ../shared/real-formats (never copied into the project)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import ROOT

SAMPLES = ROOT.parent / "shared" / "real-formats"


def _sample(*parts: str) -> Path:
    path = SAMPLES.joinpath(*parts)
    if not path.is_file():
        pytest.skip(f"the real-format sample {path} is not here (../shared is absent)")
    return path


def test_redcap_checkbox_columns_are_never_items(cli):
    result = cli("batch", str(_sample("redcap", "redcapr-checkboxes-data.csv")), "-i", "srs")
    assert result.exit_code == 2 and result.stdout == ""  # before: 4 rows, all below cutoff
    assert "no item columns found for items 1, 2, 3, 4" in result.stderr


def test_another_questionnaires_numbered_columns_are_not_taken(cli):
    result = cli("batch", str(_sample("redcap", "redcapr-survey-data.csv")), "-i", "srs")
    assert result.exit_code == 2 and result.stdout == ""
    assert "'pmq' names no alliance instrument" in result.stderr
    assert "--columns 'pmq{item}'" in result.stderr


def test_a_prefix_is_taken_when_the_user_names_it(cli, tmp_path: Path):
    src = tmp_path / "x.csv"
    src.write_text("record_id,consent___1,pmq1,pmq2,pmq3,pmq4,form_complete\nr1,1,9,9,9,9,2\n")
    refused = cli("batch", str(src), "-i", "srs")
    assert refused.exit_code == 2
    named = cli("batch", str(src), "-i", "srs", "--columns", "pmq{item}", "-f", "json")
    assert named.exit_code == 0, named.stderr
    generic = tmp_path / "y.csv"
    generic.write_text("record_id,q1,q2,q3,q4,srs_complete\nr1,9,9,9,9,2\n")
    assert cli("batch", str(generic), "-i", "srs").exit_code == 0  # a generic prefix is fine
