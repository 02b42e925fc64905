"""Find and load instrument files, reporting every problem with its file, YAML path and line.

Search order (later wins, with a visible notice): the bundled ``instruments/`` directory,
then each directory of ``ALLIANCE_INSTRUMENTS_PATH`` (``os.pathsep``-separated), then each
``--instruments-dir``.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from alliance_cli.errors import DataFileError, InstrumentInvalid, Problem, UnknownInstrument
from alliance_cli.instrument import CrossFieldProblems, Instrument

MAX_BYTES = 1024 * 1024
MAX_NODES = 100_000  # nodes after alias expansion: far above any real instrument
ENV_PATH = "ALLIANCE_INSTRUMENTS_PATH"
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Loc = tuple[str | int, ...]


def bundled_dir() -> Path:
    """The directory of instruments shipped with alliance (wheel or source checkout)."""
    here = Path(__file__).resolve().parent
    inside = here / "instruments"
    return inside if inside.is_dir() else here.parent / "instruments"


@dataclass(frozen=True)
class LoadedInstrument:
    """An instrument with where it came from and the hash of its exact bytes."""

    instrument: Instrument
    path: Path
    sha256: str
    bundled: bool


@dataclass
class Catalog:
    """All instruments visible to this run, by id; files are read only when first needed.

    The file stem is the instrument id (``load_file`` enforces it), so finding an
    instrument costs a directory listing, and scoring reads one file, not all of them.
    """

    sources: dict[str, list[tuple[Path, bool]]] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)
    _loaded: dict[str, LoadedInstrument] = field(default_factory=dict)
    _broken: dict[str, list[Problem]] = field(default_factory=dict)

    def ids(self) -> list[str]:
        """Ids of every instrument that loads, sorted (reads every file)."""
        self.load_all()
        return sorted(self._loaded)

    @property
    def entries(self) -> dict[str, LoadedInstrument]:
        """Every instrument that loads, by id (reads every file)."""
        self.load_all()
        return self._loaded

    @property
    def problems(self) -> list[Problem]:
        """Problems of every file that does not load (reads every file)."""
        self.load_all()
        return [p for key in sorted(self._broken) for p in self._broken[key]]

    def load_all(self) -> None:
        """Read and validate every file not yet read."""
        for key in self.sources:
            if key not in self._loaded and key not in self._broken:
                with contextlib.suppress(InstrumentInvalid):
                    self._load(key)

    def _load(self, key: str) -> LoadedInstrument:
        path, bundled = self.sources[key][-1]
        try:
            loaded = load_file(path, _display(path), bundled)
        except InstrumentInvalid as exc:
            self._broken[key] = exc.problems
            raise
        self._loaded[key] = loaded
        return loaded

    def get(self, wanted: str) -> LoadedInstrument:
        """The instrument with this id (case-insensitive), or UnknownInstrument."""
        key = wanted.strip().lower()
        if key in self._loaded:
            return self._loaded[key]
        if key in self._broken:
            raise InstrumentInvalid(self._broken[key])
        if key in self.sources:
            return self._load(key)
        names = sorted(self.sources)
        raise UnknownInstrument(wanted, names, nearest(key, names))


def nearest(wanted: str, choices: list[str]) -> str | None:
    """The likeliest intended id: same letters swapped first, then the closest spelling."""
    swapped = [c for c in choices if sorted(c) == sorted(wanted)]
    if swapped:
        return swapped[0]
    close = difflib.get_close_matches(wanted, choices, n=1, cutoff=0.5)
    return close[0] if close else None


# -- YAML ----------------------------------------------------------------------------------
def _line_map(node: yaml.Node) -> tuple[dict[Loc, int], int]:
    """Map each YAML path to its 1-based line; also count nodes with aliases expanded."""
    lines: dict[Loc, int] = {}
    sizes: dict[int, int] = {}

    def size(n: yaml.Node) -> int:
        # Memoised on node identity: an alias is the same node object, so a "billion
        # laughs" document is measured in linear time without being expanded.
        key = id(n)
        if key not in sizes:
            sizes[key] = 0  # guards against recursive aliases
            if isinstance(n, yaml.MappingNode):
                sizes[key] = 1 + sum(size(k) + size(v) for k, v in n.value)
            elif isinstance(n, yaml.SequenceNode):
                sizes[key] = 1 + sum(size(v) for v in n.value)
            else:
                sizes[key] = 1
        return sizes[key]

    total = size(node)
    if total > MAX_NODES:
        return lines, total

    def walk(n: yaml.Node, loc: Loc) -> None:
        lines.setdefault(loc, n.start_mark.line + 1)
        if isinstance(n, yaml.MappingNode):
            for k, v in n.value:
                key: Any = k.value
                if isinstance(k, yaml.ScalarNode) and k.tag.endswith(":int"):
                    key = int(key)
                lines.setdefault((*loc, key), k.start_mark.line + 1)
                lines.setdefault((*loc, str(key)), k.start_mark.line + 1)
                walk(v, (*loc, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                walk(v, (*loc, i))

    walk(node, ())
    return lines, total


def _line_for(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of the deepest part of loc that the file has."""
    for end in range(len(loc), -1, -1):
        prefix = loc[:end]
        if prefix in lines:
            return lines[prefix]
        alt = tuple(float(p) if isinstance(p, int) else p for p in prefix)
        if alt in lines:
            return lines[alt]
    return None


def format_loc(loc: Loc) -> str:
    """Render a location the way a user would write it: ``subscales[1].items[2]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, float):
            out += f"[{part:g}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _pydantic_problems(err: ValidationError, file: str, lines: dict[Loc, int]) -> list[Problem]:
    problems: list[Problem] = []
    for e in err.errors(include_url=False):
        loc: Loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("[")))
        # Keys of dict[float, str] come back with a '[key]' marker; drop the marker.
        loc = tuple(p for p in loc if p != "[key]")
        inner = e.get("ctx", {}).get("error")
        if isinstance(inner, CrossFieldProblems):
            for sub_loc, msg in inner.problems:
                full = (*loc, *sub_loc)
                problems.append(Problem(file, _line_for(lines, full), format_loc(full), msg))
            continue
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = f"unknown key {loc[-1]!r}"
        elif e["type"] == "missing":
            msg = "required key is missing"
        elif e["type"] == "literal_error":
            msg = f"{msg} (got {e['input']!r})"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        problems.append(Problem(file, _line_for(lines, loc), format_loc(loc), msg))
    return problems


def read_yaml(path: Path, shown: str | None = None) -> tuple[Any, dict[Loc, int], bytes]:
    """Safely parse one YAML file: size limit, alias-bomb guard, line numbers for paths."""
    name = shown or str(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise InstrumentInvalid(
                [Problem(name, None, "", f"file is larger than {MAX_BYTES // 1024} KiB; refused")]
            )
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"{name}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InstrumentInvalid(
            [Problem(name, None, "", f"not UTF-8 text (byte {exc.start})")]
        ) from None
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                raise InstrumentInvalid([Problem(name, 1, "", "file is empty")])
            lines, size = _line_map(node)
            if size > MAX_NODES:
                raise InstrumentInvalid(
                    [Problem(name, None, "", f"aliases expand to over {MAX_NODES} nodes; refused")]
                )
            data = loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or exc.context or "invalid YAML"
        raise InstrumentInvalid([Problem(name, line, "", f"YAML syntax: {what}")]) from None
    except yaml.YAMLError as exc:
        raise InstrumentInvalid([Problem(name, None, "", f"YAML: {exc}")]) from None
    return data, lines, raw


def load_file(path: Path, shown: str | None = None, bundled: bool = False) -> LoadedInstrument:
    """Load and validate one instrument file; every problem is in the InstrumentInvalid."""
    name = shown or str(path)
    data, lines, raw = read_yaml(path, shown)
    if not isinstance(data, dict):
        kind = type(data).__name__ if data is not None else "nothing"
        raise InstrumentInvalid(
            [Problem(name, 1, "", f"expected a mapping of keys at the top, found a {kind}")]
        )
    problems: list[Problem] = []
    instrument: Instrument | None = None
    try:
        instrument = Instrument.model_validate(data)
    except ValidationError as exc:
        problems = _pydantic_problems(exc, name, lines)
    if instrument is not None and instrument.id != path.stem:
        problems.append(
            Problem(
                name,
                _line_for(lines, ("id",)),
                "id",
                f"id {instrument.id!r} must match the file name {path.stem!r}",
            )
        )
    if problems:
        raise InstrumentInvalid(problems)
    assert instrument is not None
    return LoadedInstrument(instrument, path, hashlib.sha256(raw).hexdigest(), bundled)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def search_dirs(extra: Sequence[Path] = ()) -> list[tuple[Path, bool]]:
    """Directories to read, bundled first, each with whether it is the bundled one."""
    dirs: list[tuple[Path, bool]] = [(bundled_dir(), True)]
    env = os.environ.get(ENV_PATH, "")
    dirs += [(Path(p), False) for p in env.split(os.pathsep) if p.strip()]
    dirs += [(Path(p), False) for p in extra]
    return dirs


def load_catalog(extra_dirs: Iterable[Path] = ()) -> Catalog:
    """Find every instrument file visible to this run (files are read on first use)."""
    catalog = Catalog()
    for directory, bundled in search_dirs(list(extra_dirs)):
        if not directory.is_dir():
            if not bundled:
                raise DataFileError(f"{directory}: instruments directory does not exist")
            continue
        for path in sorted(directory.iterdir()):
            if path.suffix not in (".yaml", ".yml") or not path.is_file():
                continue
            key = path.stem.lower()
            previous = catalog.sources.get(key)
            if previous:
                catalog.notices.append(
                    f"notice: {_display(path)} overrides instrument {key!r} "
                    f"from {_display(previous[-1][0])}"
                )
            catalog.sources.setdefault(key, []).append((path, bundled))
    return catalog
