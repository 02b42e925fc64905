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
    assert json.loads(cached.read_text(encoding="utf-8"))["id"] == "mini"  # rebuilt


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
