"""The compiled-instrument cache: a hit needs neither YAML nor pydantic, and is never stale."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliance_cli.core.definition import Instrument
from alliance_cli.core.scorer import Scorer
from alliance_cli.io import catalog, yamlfile
from alliance_cli.io.catalog import load_catalog, load_file

from .conftest import MINIMAL, env_without_color, scorable_ids, write


def test_second_load_comes_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path / "mini.yaml", MINIMAL)
    first = load_file(path)
    monkeypatch.setattr(yamlfile, "read_yaml", lambda *a, **k: pytest.fail("YAML was parsed"))
    second = load_file(path)
    assert second.sha256 == first.sha256
    assert second.instrument.to_data() == first.instrument.to_data()


def test_changed_bytes_are_parsed_again(tmp_path: Path):
    path = write(tmp_path / "mini.yaml", MINIMAL)
    load_file(path)
    path.write_text(MINIMAL.replace("Third topic", "Third topic changed"), encoding="utf-8")
    assert load_file(path).instrument.items[2].label == "Third topic changed"


def test_a_broken_file_is_never_served_from_cache(tmp_path: Path):
    path = write(tmp_path / "mini.yaml", MINIMAL)
    load_file(path)
    path.write_text(MINIMAL.replace("max: 5", "max: 0"), encoding="utf-8")
    with pytest.raises(catalog.InstrumentInvalid):
        load_file(path)


def test_corrupt_cache_is_ignored(tmp_path: Path):
    path = write(tmp_path / "mini.yaml", MINIMAL)
    loaded = load_file(path)
    cached = catalog._cache_file(loaded.sha256)
    assert cached is not None and cached.exists()
    cached.write_text("{not json", encoding="utf-8")
    assert load_file(path).instrument.id == "mini"
    assert json.loads(cached.read_text(encoding="utf-8"))["entry"]["id"] == "mini"  # rebuilt


def _cached_entry(path: Path) -> tuple[Path, dict]:
    loaded = load_file(path)
    cached = catalog._cache_file(loaded.sha256)
    assert cached is not None and cached.exists()
    return cached, json.loads(cached.read_text(encoding="utf-8"))


def test_a_tampered_entry_never_scores(tmp_path: Path):
    path = write(tmp_path / "mini.yaml", MINIMAL)
    cached, stored = _cached_entry(path)
    stored["entry"]["items"][1]["reverse"] = False  # a changed key under the genuine hash
    cached.write_text(json.dumps(stored), encoding="utf-8")
    assert load_file(path).instrument.items[1].reverse is True  # rebuilt from the YAML


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e.pop("items"),
        lambda e: e["scale"].update(step=0),
        lambda e: e["subscales"][0].update(items=["99"]),
        lambda e: e["items"].append({"id": "1", "label": "again"}),
    ],
)
def test_a_malformed_entry_with_a_matching_digest_is_rebuilt(tmp_path: Path, damage):
    path = write(tmp_path / "mini.yaml", MINIMAL)
    cached, stored = _cached_entry(path)
    damage(stored["entry"])
    stored["digest"] = catalog._entry_digest(load_file(path).sha256, stored["entry"])
    cached.write_text(json.dumps(stored), encoding="utf-8")
    loaded = load_file(path)  # no KeyError, no ZeroDivisionError: the YAML again
    assert [i.id for i in loaded.instrument.items] == ["1", "2", "3"]


def test_the_cache_key_follows_the_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path / "mini.yaml", MINIMAL)
    before = catalog._cache_file(load_file(path).sha256)
    monkeypatch.setattr(catalog, "_code_fingerprint", lambda: "changed-code")
    after = catalog._cache_file(load_file(path).sha256)
    assert before != after


def test_cache_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    cache = tmp_path / "cache-off"
    monkeypatch.setenv("ALLIANCE_CACHE_DIR", str(cache))
    monkeypatch.setenv("ALLIANCE_NO_CACHE", "1")
    parsed = []
    real_parse = catalog._parse
    monkeypatch.setattr(catalog, "_parse", lambda *a: parsed.append(a) or real_parse(*a))
    path = write(tmp_path / "mini.yaml", MINIMAL)
    load_file(path)
    load_file(path)
    assert len(parsed) == 2  # both loads read the YAML: nothing was served from a cache
    assert not cache.exists()  # and nothing was written


def test_warm_score_imports_neither_pydantic_nor_yaml(tmp_path: Path):
    env = env_without_color()
    env.pop("ALLIANCE_NO_CACHE")
    env["ALLIANCE_CACHE_DIR"] = str(tmp_path / "cache")
    code = (
        "import sys; from alliance_cli.cli.app import main; sys.argv = ['alliance', 'score', "
        "'wai-sr', *'5 4 4 3 5 4 4 3 5 4 4 3'.split(), '-f', 'json']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "loaded = [m for m in ('pydantic', 'yaml', 'rich') if m in sys.modules]\n"
        "print(sorted(loaded), file=sys.stderr)"
    )
    cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert json.loads(cold.stdout) == json.loads(warm.stdout)
    assert cold.stderr.strip() == "['pydantic', 'yaml']"
    assert warm.stderr.strip() == "[]"


@given(st.sampled_from(scorable_ids()), st.data())
@settings(max_examples=100, deadline=None)
def test_plain_form_scores_exactly_like_the_validated_model(instrument_id, data):
    entry = load_catalog().get(instrument_id)
    validated = Instrument.model_validate(entry.instrument.to_data())
    plain, model = Scorer(entry.instrument, entry.sha256), Scorer(validated, entry.sha256)
    points = [f"{p:g}" for p in validated.scale.points()]
    n = len(validated.items)
    answers = data.draw(st.lists(st.sampled_from([*points, "", "x"]), min_size=n, max_size=n))
    assert plain.score_cells(answers) == model.score_cells(answers)
    results, problems, noted = model.score_cells(answers)
    if not problems:
        raws = [model.parse(i, c)[0] for i, c in enumerate(answers)]
        who = {"client_id": None, "session": None, "date": None, "rater": None}
        assert plain.result_dict(results, noted, raws, who) == model.result_dict(
            results, noted, raws, who
        )


# -- issue 20, item 10: a cache is trusted only if it is this user's alone --------------------


def _tampered(cli, cache: Path) -> list[Path]:
    """Score once to fill the cache, then rewrite every SRS entry so that its items score
    as their reverse, with the digest recomputed (the digest is no secret)."""
    assert cli("score", "srs", "9", "9", "9", "9", "-f", "json").exit_code == 0
    entries = sorted(cache.glob("*.json"))
    for entry in entries:
        value = json.loads(entry.read_text())
        sha = entry.name.split("-")[0]
        for item in value["entry"]["items"]:
            item["reverse"] = True
        value["digest"] = catalog._entry_digest(sha, value["entry"])
        entry.write_text(json.dumps(value))
    return entries


def test_a_cache_others_can_write_is_not_used(cli, tmp_path: Path, monkeypatch):
    cache = tmp_path / "shared"
    cache.mkdir()
    monkeypatch.setenv("ALLIANCE_CACHE_DIR", str(cache))
    monkeypatch.delenv("ALLIANCE_NO_CACHE", raising=False)
    cache.chmod(0o700)
    assert _tampered(cli, cache)
    cache.chmod(0o777)  # now anyone may have written those entries
    result = cli("score", "srs", "9", "9", "9", "9", "-f", "json")
    assert json.loads(result.stdout)[0]["scales"]["total"]["sum"] == 36  # from the YAML
    assert f"note: the instrument cache {cache} can be written by other users" in result.stderr


@pytest.mark.skipif(not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
                    reason="giving a file to another user needs root")  # fmt: skip
def test_a_cache_entry_of_another_user_is_not_used(cli, tmp_path: Path, monkeypatch):
    import os

    cache = tmp_path / "cache-own"
    monkeypatch.setenv("ALLIANCE_CACHE_DIR", str(cache))
    monkeypatch.delenv("ALLIANCE_NO_CACHE", raising=False)
    entries = _tampered(cli, cache)
    # the tampered entry, while this user's, is used: so the check below can fail
    mine = cli("score", "srs", "9", "9", "9", "9", "-f", "json")
    assert json.loads(mine.stdout)[0]["scales"]["total"]["sum"] == 4
    entries = _tampered(cli, cache)
    for entry in entries:
        os.chown(entry, 65534, 65534)
    result = cli("score", "srs", "9", "9", "9", "9", "-f", "json")
    assert json.loads(result.stdout)[0]["scales"]["total"]["sum"] == 36
    assert "was written by another user; it is not used" in result.stderr
