"""Instrument files: bundled ones load, broken ones are reported precisely (exit 4)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from alliance_cli.core.definition import Instrument
from alliance_cli.io.catalog import bundled_dir, load_catalog
from alliance_cli.io.files import MAX_DEFINITION_BYTES as MAX_BYTES

from .conftest import MINIMAL, ROOT, write

BUNDLED = sorted(bundled_dir().glob("*.yaml"))
REQUIRED_IDS = {
    "wai-sr", "wai-sr-t", "wai-s", "wai-s-t", "wai", "wai-t",
    "haq-ii", "haq-ii-t", "srs", "star-p", "star-c",
}  # fmt: skip


def test_every_bundled_file_loads_without_problems():
    catalog = load_catalog()
    assert catalog.problems == []
    assert set(catalog.ids()) >= REQUIRED_IDS
    assert len(catalog.ids()) == len(BUNDLED)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_bundled_counterparts_exist_and_point_back(path: Path):
    catalog = load_catalog()
    inst = catalog.get(path.stem).instrument
    if inst.counterpart:
        other = catalog.get(inst.counterpart).instrument
        assert other.counterpart == inst.id
        assert other.respondent != inst.respondent


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_json_schema_validates_every_bundled_file(path: Path):
    schema = Instrument.model_json_schema()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # JSON has string keys only: YAML's numeric anchor keys become strings, as in a JSON file.
    data["scale"]["labels"] = {str(k): v for k, v in data["scale"].get("labels", {}).items()}
    jsonschema.validate(json.loads(json.dumps(data)), schema)


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.stem)
def test_labels_are_short_topic_words(path: Path):
    inst = load_catalog().get(path.stem).instrument
    for item in inst.items:
        assert 1 <= len(item.label.split()) <= 6, item.label
        assert item.text is None  # no published wording in the repository


def test_unverified_instruments_say_why():
    for key in load_catalog().ids():
        ver = load_catalog().get(key).instrument.verification
        assert ver.sources, key
        if ver.status != "verified":
            assert ver.note, key


def test_srs_licence_is_shown(cli):
    result = cli("instruments", "show", "srs", "-f", "table")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "electronic" in text and "licence" in text.lower()
    assert "at or below 36" in text.lower() or "<= 36" in text


def test_list_json_names_every_instrument(cli):
    result = cli("instruments", "-f", "json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert {r["id"] for r in rows} >= REQUIRED_IDS
    wai_sr = next(r for r in rows if r["id"] == "wai-sr")
    assert wai_sr["dimensions"] == ["goal", "task", "bond"]
    assert wai_sr["verification"] == "verified"


def test_instruments_list_is_the_list_too(cli):
    """What a new user types ("No such command 'list'" before): the same list."""
    listed = cli("instruments", "list", "-f", "csv")
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout == cli("instruments", "-f", "csv").stdout
    assert listed.stdout.startswith("id,name,respondent,")


def test_list_table_shows_verification(cli):
    result = cli("instruments", "-f", "table")
    assert result.exit_code == 0
    assert "wai-sr" in result.stdout and "unverified" in result.stdout


def test_show_json_has_items_and_hash(cli):
    result = cli("instruments", "show", "wai-sr", "-f", "json")
    data = json.loads(result.stdout)
    assert [i["id"] for i in data["items"]] == [str(i) for i in range(1, 13)]
    assert len(data["_definition"]["sha256"]) == 64


def test_schema_command_prints_json_schema(cli):
    result = cli("instruments", "schema")
    schema = json.loads(result.stdout)
    assert schema["type"] == "object"
    assert "items" in schema["properties"]
    assert "description" in schema["$defs"]["Item"]["properties"]["label"]


def test_check_valid_file_exit_0(cli, mini_dir):
    result = cli("instruments", "check", str(mini_dir / "mini.yaml"), "-f", "table")
    assert result.exit_code == 0, result.stderr
    assert "ok:" in result.stdout


BROKEN = {
    "unknown_key": (
        MINIMAL.replace('version: "1"', 'version: "1"\ncolour: blue'),
        "colour: unknown key 'colour'",
        4,
    ),
    "duplicate_item": (
        MINIMAL.replace("  - {id: 3, label: Third topic}", "  - {id: 2, label: Again}"),
        "items[2].id: item '2' is defined twice",
        15,
    ),
    "subscale_missing_item": (
        MINIMAL.replace("items: [1, 2]}", "items: [1, 13]}"),
        "subscales[0].items[1]: item '13' does not exist",
        17,
    ),
    "reverse_on_one_point_scale": (
        MINIMAL.replace("max: 5", "max: 1").replace("5: Always", "1.0: Once"),
        "items[1].reverse: a reverse key needs a scale of more than one point",
        14,
    ),
    "cutoff_outside_range": (
        MINIMAL.replace("threshold: 2,", "threshold: 9,"),
        "cutoffs[0].threshold: 9 is outside the score range 1-5",
        19,
    ),
    "bad_yaml_syntax": (
        MINIMAL.replace("  min: 1\n", "  min: [1\n"),
        "YAML syntax:",
        10,  # where the parser found the problem (the list opened on line 9)
    ),
    "list_where_mapping_belongs": (
        MINIMAL.replace("verification: {status: unverified, sources: []}", "verification: [a, b]"),
        "verification:",
        7,
    ),
    "duplicate_in_subscale": (
        MINIMAL.replace("items: [1, 2]}", "items: [1, 1]}"),
        "subscales[0].items[1]: item '1' appears twice",
        17,
    ),
    "top_level_list": ("- a\n- b\n", "expected a mapping of keys at the top", 1),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_file_names_file_path_and_line(cli, tmp_path: Path, case: str):
    text, expected, line = BROKEN[case]
    path = write(tmp_path / "mini.yaml", text)
    result = cli("instruments", "check", str(path))
    assert result.exit_code == 4
    assert expected in result.stderr
    first = next(ln for ln in result.stderr.splitlines() if expected in ln)
    assert first.startswith(f"error: {path}")
    if line is not None:
        assert f"{path}:{line}:" in first
    assert "Traceback" not in result.stderr


def test_every_problem_in_a_file_is_reported(cli, tmp_path: Path):
    text = (
        MINIMAL.replace("items: [1, 2]}", "items: [1, 13], max_missing: 2}")
        .replace("threshold: 2,", "threshold: 9,")
        .replace("{id: 3, label: Third topic}", "{id: 1, label: Third topic}")
    )
    result = cli("instruments", "check", str(write(tmp_path / "mini.yaml", text)))
    assert result.exit_code == 4
    for path in (
        "subscales[0].items[1]: item '13' does not exist",
        "subscales[0].max_missing: 2 missing would leave no item of 2",
        "cutoffs[0].threshold",
        "items[2].id: item '1' is defined twice",
    ):
        assert path in result.stderr
    assert len(result.stderr.splitlines()) == 5  # four problems and the summary


def test_example_broken_file_reports_all_its_problems(cli):
    result = cli("instruments", "check", str(ROOT / "examples" / "broken" / "my-wai.yaml"))
    assert result.exit_code == 4
    assert result.stderr.count("error: ") == 3


def test_empty_file(cli, tmp_path: Path):
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")
    result = cli("instruments", "check", str(path))
    assert result.exit_code == 4
    assert f"error: {path}:1: file is empty" in result.stderr


def test_file_over_size_limit(cli, tmp_path: Path):
    path = tmp_path / "big.yaml"
    path.write_text("# " + "x" * MAX_BYTES + "\n", encoding="utf-8")
    result = cli("instruments", "check", str(path))
    assert result.exit_code == 4
    assert f"error: {path}: file is larger than 1024 KiB; refused" in result.stderr


def test_alias_bomb_is_refused(cli, tmp_path: Path):
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    path = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    result = cli("instruments", "check", str(path))
    assert result.exit_code == 4
    assert "aliases expand to over" in result.stderr


def test_id_must_match_file_name(cli, tmp_path: Path):
    path = write(tmp_path / "other.yaml", MINIMAL)
    result = cli("instruments", "check", str(path))
    assert result.exit_code == 4
    assert f"{path}:1: id: id 'mini' must match the file name 'other'" in result.stderr


def test_several_files_all_reported(cli, tmp_path: Path, mini_dir: Path):
    bad = write(tmp_path / "x" / "mini.yaml", MINIMAL.replace("items: [1, 2]}", "items: [9]}"))
    result = cli("instruments", "check", str(mini_dir / "mini.yaml"), str(bad))
    assert result.exit_code == 4
    assert "1 of 2 file(s) invalid" in result.stderr


def test_user_dir_adds_and_overrides_with_notice(cli, tmp_path: Path, mini_dir: Path):
    bundled = (bundled_dir() / "srs.yaml").read_text(encoding="utf-8")
    write(mini_dir / "srs.yaml", bundled.replace("threshold: 36", "threshold: 34"))
    result = cli("--instruments-dir", str(mini_dir), "instruments", "-f", "json")
    assert result.exit_code == 0
    ids = {r["id"]: r for r in json.loads(result.stdout)}
    assert "mini" in ids and ids["srs"]["bundled"] is False
    assert "overrides instrument 'srs'" in result.stderr


def test_env_path_is_searched(cli, monkeypatch, mini_dir: Path):
    monkeypatch.setenv("ALLIANCE_INSTRUMENTS_PATH", str(mini_dir))
    result = cli("instruments", "show", "mini", "-f", "json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["id"] == "mini"


def test_broken_user_file_is_skipped_with_warning_and_named_on_use(cli, tmp_path: Path):
    write(tmp_path / "d" / "bad.yaml", MINIMAL.replace("id: mini", "id: bad").replace("max: 5", ""))
    listing = cli("--instruments-dir", str(tmp_path / "d"), "instruments", "-f", "json")
    assert listing.exit_code == 0
    assert "warning:" in listing.stderr and "bad.yaml" in listing.stderr
    use = cli("--instruments-dir", str(tmp_path / "d"), "score", "bad", "1", "2", "3")
    assert use.exit_code == 4
    assert "scale.max: required key is missing" in use.stderr


def test_missing_instruments_dir_is_a_file_error(cli, tmp_path: Path):
    result = cli("--instruments-dir", str(tmp_path / "nope"), "instruments")
    assert result.exit_code == 5
    assert "instruments directory does not exist" in result.stderr


def test_check_warns_about_an_unknown_counterpart(cli, tmp_path: Path):
    path = write(
        tmp_path / "mini.yaml", MINIMAL.replace('version: "1"', 'version: "1"\ncounterpart: nope')
    )
    result = cli("instruments", "check", str(path), "-f", "json")
    assert result.exit_code == 0
    (entry,) = json.loads(result.stdout)
    assert entry["valid"] and "counterpart 'nope' is not a known instrument" in entry["warnings"][0]
    assert "warning:" in result.stderr


def test_check_warns_about_topic_pairs_the_counterpart_cannot_meet(cli, tmp_path: Path):
    """A therapist form whose topic pairs name an item the client form lacks, or whose
    client form names another therapist form, is valid but warned about: those pairs
    would never be compared."""
    bundled = (ROOT / "instruments" / "wai-sr-t.yaml").read_text(encoding="utf-8")
    mine = bundled.replace("id: wai-sr-t\n", "id: my-t\n", 1).replace(
        "counterpart_items: {1: 12,", "counterpart_items: {1: 13,", 1
    )
    assert mine != bundled and "counterpart: wai-sr\n" in mine
    path = write(tmp_path / "my-t.yaml", mine)
    result = cli("instruments", "check", str(path), "-f", "json")
    assert result.exit_code == 0, result.stderr
    (entry,) = json.loads(result.stdout)
    assert entry["valid"]
    assert entry["warnings"] == [
        "counterpart_items: wai-sr has no item 13 (those topic pairs are never compared)",
        "wai-sr names 'wai-sr-t' as its counterpart, not 'my-t': a gap compares wai-sr with "
        "wai-sr-t, never with my-t",
    ]
    bundled_check = cli("instruments", "check", str(ROOT / "instruments" / "wai-sr-t.yaml"))
    assert bundled_check.exit_code == 0 and "warning" not in bundled_check.stderr
