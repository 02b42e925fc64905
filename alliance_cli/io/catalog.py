"""Find and load instrument files, reporting every problem with its file, YAML path and line.

Search order (later wins, with a visible notice): the bundled ``instruments/`` directory,
then each directory of ``ALLIANCE_INSTRUMENTS_PATH`` (``os.pathsep``-separated), then each
``--instruments-dir``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from alliance_cli.core.compiled import CompiledInstrument
from alliance_cli.core.errors import DataFileError, InstrumentInvalid, Problem, UnknownInstrument
from alliance_cli.io.files import MAX_DEFINITION_BYTES, note_read, read_at_most

try:  # the standard library's own SHA-256: hashlib's import loads OpenSSL (2.5 ms at start-up)
    from _sha256 import sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # (an interpreter without it)
    from hashlib import sha256

if TYPE_CHECKING:
    from pydantic import ValidationError

    from alliance_cli.io.yamlfile import Loc

ENV_PATH = "ALLIANCE_INSTRUMENTS_PATH"


def bundled_dir() -> Path:
    """The directory of instruments shipped with alliance (wheel or source checkout)."""
    package = Path(__file__).resolve().parents[1]
    inside = package / "instruments"
    return inside if inside.is_dir() else package.parent / "instruments"


@dataclass(frozen=True)
class LoadedInstrument:
    """An instrument with where it came from and the hash of its exact bytes."""

    instrument: CompiledInstrument
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
    local_norms: dict[str, Any] = field(default_factory=dict)  # id -> Norm (--norms FILE)

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
        norm = self.local_norms.get(key)
        if norm is not None:  # a clinic's own norms come first: z-scores, reliable change
            import dataclasses

            inst = dataclasses.replace(loaded.instrument, norms=(norm, *loaded.instrument.norms))
            loaded = dataclasses.replace(loaded, instrument=inst)
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

    def item_count(self, wanted: str) -> int | None:
        """How many items the instrument with this id has (None if it does not load)."""
        try:
            return len(self.get(wanted).instrument.items)
        except (InstrumentInvalid, UnknownInstrument, DataFileError):
            return None


def nearest(wanted: str, choices: list[str]) -> str | None:
    """The likeliest intended id: same letters swapped first, then the closest spelling."""
    swapped = [c for c in choices if sorted(c) == sorted(wanted)]
    if swapped:
        return swapped[0]
    import difflib

    close = difflib.get_close_matches(wanted, choices, n=1, cutoff=0.5)
    return close[0] if close else None


def _pydantic_problems(err: ValidationError, file: str, lines: dict[Loc, int]) -> list[Problem]:
    from alliance_cli.core.definition import CrossFieldProblems
    from alliance_cli.io.yamlfile import format_loc, line_for

    problems: list[Problem] = []
    for e in err.errors(include_url=False):
        loc: Loc = tuple(p for p in e["loc"] if not (isinstance(p, str) and p.startswith("[")))
        # Keys of dict[float, str] come back with a '[key]' marker; drop the marker.
        loc = tuple(p for p in loc if p != "[key]")
        inner = e.get("ctx", {}).get("error")
        if isinstance(inner, CrossFieldProblems):
            for sub_loc, msg in inner.problems:
                full = (*loc, *sub_loc)
                problems.append(Problem(file, line_for(lines, full), format_loc(full), msg))
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
        problems.append(Problem(file, line_for(lines, loc), format_loc(loc), msg))
    return problems


def load_file(path: Path, shown: str | None = None, bundled: bool = False) -> LoadedInstrument:
    """Load and validate one instrument file; every problem is in the InstrumentInvalid.

    A file already validated (same bytes, same alliance and pydantic) comes from the
    compiled cache: no YAML parsing and no validation, which is most of ``score``'s start-up.
    """
    name = shown or str(path)
    note_read(path, "the instrument definition")
    try:
        raw = read_at_most(path, MAX_DEFINITION_BYTES)  # (over the limit: read_yaml refuses)
        raw = raw if len(raw) <= MAX_DEFINITION_BYTES else b""
    except OSError as exc:
        raise DataFileError(f"{name}: cannot read ({exc.strerror or exc})") from None
    sha = sha256(raw).hexdigest() if raw else ""
    data = _cache_get(sha) if sha else None
    compiled = None
    if data is not None and data.get("id") == path.stem:
        try:
            compiled = CompiledInstrument.from_data(data)
        except (ValueError, KeyError, TypeError):  # a malformed entry: rebuilt, never trusted
            compiled = None
    if compiled is None:
        data, sha = _parse(path, name)
        compiled = CompiledInstrument.from_data(data)
        _cache_put(sha, data)
    return LoadedInstrument(compiled, path, sha, bundled)


def _parse(path: Path, name: str) -> tuple[dict[str, Any], str]:
    """Parse and validate with pydantic; return the validated definition as JSON data."""
    from pydantic import ValidationError

    from alliance_cli.core.definition import Instrument
    from alliance_cli.io.yamlfile import line_for, read_yaml

    data, lines, raw = read_yaml(path, name)
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
                line_for(lines, ("id",)),
                "id",
                f"id {instrument.id!r} must match the file name {path.stem!r}",
            )
        )
    if problems:
        raise InstrumentInvalid(problems)
    assert instrument is not None
    return instrument.model_dump(mode="json"), sha256(raw).hexdigest()


# -- compiled cache ------------------------------------------------------------------------
# A validated definition is kept as JSON (its model_dump) under the user cache directory,
# keyed by the SHA-256 of the file's bytes and the versions of alliance and pydantic: the
# same bytes always validate the same way, so a hit needs neither YAML nor pydantic.
# Anything unreadable is ignored and rebuilt. ALLIANCE_CACHE_DIR moves it;
# ALLIANCE_NO_CACHE=1 turns it off.
ENV_CACHE = "ALLIANCE_CACHE_DIR"


def cache_dir() -> Path | None:
    """Where compiled instruments are kept, or None when caching is off."""
    if os.environ.get("ALLIANCE_NO_CACHE"):
        return None
    env = os.environ.get(ENV_CACHE)
    base = Path(env) if env else _user_cache() / "compiled"
    why = _untrusted(base)
    if why is not None:
        note = f"note: the instrument cache {base} {why}; it is not used (scoring reads the YAML)"
        if note not in CACHE_NOTES:
            CACHE_NOTES.append(note)
        return None
    return base


def _user_cache() -> Path:
    """The user's cache folder for alliance: on Linux the XDG rule itself (platformdirs'
    import is 6 ms of a warm score's start-up), elsewhere platformdirs."""
    import sys

    if sys.platform.startswith("linux"):
        xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
        root = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
        return root / "alliance"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("alliance", appauthor=False))


CACHE_NOTES: list[str] = []  # why a cache was not trusted, said once by load_catalog


def _untrusted(path: Path) -> str | None:
    """Why a cache folder or entry may have been written by someone else, or None: it must
    belong to this user and be writable by no one else. Another user could otherwise put
    an entry there (with a digest recomputed: the digest is no secret) that changes scores
    while ``definition_sha256`` names the genuine file."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None  # made by this user when first written (mode 0700)
    except OSError as exc:
        return f"cannot be checked ({exc.strerror or exc})"
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        return "belongs to another user"
    if info.st_mode & 0o022:
        return "can be written by other users"
    if os.path.islink(path):
        return "is a symbolic link"
    return None


@functools.lru_cache(maxsize=1)
def _code_fingerprint() -> str:
    """Sizes and modification times of the code that validates and compiles a definition.

    Part of the cache key, so a development checkout whose validation rules changed never
    scores with an entry the old rules made (a release changes ``__version__`` as well).
    """
    core = Path(__file__).resolve().parents[1] / "core"
    parts = []
    for path in sorted(core.glob("*.py")):
        try:
            info = path.stat()
        except OSError:
            continue
        parts.append(f"{path.name}:{info.st_size}:{info.st_mtime_ns}")
    return str(sha256("|".join(parts).encode()).hexdigest()[:16])


def _cache_file(sha: str) -> Path | None:
    base = cache_dir()
    if base is None:
        return None
    from alliance_cli import __version__

    pydantic_version = _pydantic_stamp()
    if pydantic_version is None:  # pydantic not found where imports find it: do not cache
        return None
    return base / f"{sha}-{__version__}-{pydantic_version}-{_code_fingerprint()}.json"


@functools.lru_cache(maxsize=1)
def _pydantic_stamp() -> str | None:
    """Which pydantic validates a definition, without importing it (or importlib.metadata,
    14 ms of a warm score's start-up): its version file's size and time, where the import
    system finds it. A different pydantic is a different stamp, so the cache is keyed on it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("pydantic")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        try:
            info = os.stat(os.path.join(folder, "version.py"))
        except OSError:
            continue
        return f"p{info.st_size:x}{info.st_mtime_ns:x}"[:20]
    return None


def _entry_digest(sha: str, data: dict[str, Any]) -> str:
    """The digest stored beside an entry: its data bound to the definition file's hash."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(sha256(f"{sha}\n{text}".encode()).hexdigest())


def _cache_get(sha: str) -> dict[str, Any] | None:
    """A cached definition, or None: missing, unreadable, malformed or with a wrong digest
    (an edited entry never scores; it is rebuilt from the YAML)."""
    path = _cache_file(sha)
    if path is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (hasattr(os, "getuid") and info.st_uid != os.getuid()) or info.st_mode & 0o022:
            note = f"note: the cached entry {path} was written by another user; it is not used"
            if note not in CACHE_NOTES:
                CACHE_NOTES.append(note)
            return None
        with os.fdopen(fd, encoding="utf-8") as handle:
            fd = -1
            value = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    if not isinstance(value, dict) or not isinstance(value.get("entry"), dict):
        return None
    entry: dict[str, Any] = value["entry"]
    if value.get("digest") != _entry_digest(sha, entry):
        return None
    return entry


def _cache_put(sha: str, data: dict[str, Any]) -> None:
    import tempfile

    path = _cache_file(sha)
    if path is None:
        return
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"entry": data, "digest": _entry_digest(sha, data)}, handle)
        os.replace(tmp, path)
    except OSError:  # a read-only home is no reason to fail: scoring works without a cache
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


@dataclass
class CheckResult:
    """What ``alliance instruments check`` found in one file."""

    file: str
    problems: list[Problem]
    warnings: list[str]
    sha256: str = ""

    @property
    def valid(self) -> bool:
        """True when the file has no problems (warnings do not count)."""
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The result as JSON data."""
        return {
            "file": self.file,
            "valid": self.valid,
            "problems": [
                {"line": p.line, "path": p.path, "message": p.message} for p in self.problems
            ],
            "warnings": self.warnings,
            "sha256": self.sha256,
        }


def check_files(paths: Sequence[Path], catalog: Catalog | None = None) -> list[CheckResult]:
    """Validate each file; warn about a counterpart no file or catalog directory defines, a
    topic pair naming an item the counterpart lacks, and a counterpart naming another form."""
    results: list[CheckResult] = []
    loaded: list[LoadedInstrument] = []
    for path in paths:
        try:
            entry = load_file(path)
        except InstrumentInvalid as exc:
            results.append(CheckResult(str(path), exc.problems, []))
            continue
        except DataFileError as exc:  # a missing or unreadable file: report it, go on
            problem = Problem(str(path), None, "", str(exc).removeprefix(f"{path}: "))
            results.append(CheckResult(str(path), [problem], []))
            continue
        loaded.append(entry)
        results.append(CheckResult(str(path), [], [], entry.sha256))
    checked = {e.instrument.id: e.instrument for e in loaded}

    def instrument(wanted: str) -> Any:
        if wanted in checked:
            return checked[wanted]
        if catalog is None or wanted not in catalog.sources:
            return None
        try:
            return catalog.get(wanted).instrument
        except InstrumentInvalid:
            return False  # known, but it does not load: said when it is used

    by_file = {str(e.path): e for e in loaded}
    for result in results:
        found = by_file.get(result.file)
        if found is None or not found.instrument.counterpart:
            continue
        result.warnings += _counterpart_warnings(found.instrument, instrument)
    return results


def _counterpart_warnings(mine: Any, instrument: Callable[[str], Any]) -> list[str]:
    """What a form's counterpart says against it (see ``check_files``)."""
    other_id = mine.counterpart
    other = instrument(other_id)
    if other is None:
        return [
            f"counterpart {other_id!r} is not a known instrument (client-therapist gaps need "
            "both forms)"
        ]
    if other is False:
        return []
    warnings = []
    theirs = set(other.item_ids())
    pairs = mine.data.get("counterpart_items") or {}
    missing = [str(v) for v in pairs.values() if str(v) not in theirs]
    if missing:
        warnings.append(
            f"counterpart_items: {other_id} has no item {', '.join(missing)} (those topic "
            "pairs are never compared)"
        )
    if other.counterpart and other.counterpart != mine.id:
        why = (
            f"a gap compares {other_id} with {other.counterpart}, never with {mine.id}"
            if mine.respondent != "client"
            else f"its topic pairs, if any, are written for {other.counterpart}"
        )
        warnings.append(
            f"{other_id} names {other.counterpart!r} as its counterpart, not {mine.id!r}: {why}"
        )
    return warnings


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
