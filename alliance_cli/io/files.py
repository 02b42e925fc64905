"""Files: how large a definition may be, and writing so that nothing is damaged or lost.

The rules for every file alliance writes (``-o``, ``--rejects``):

- ``-`` is standard output.
- A regular file, or a path that does not exist yet, is written to a temporary file beside it
  and renamed into place when complete: an interrupted run leaves the old file or nothing.
  An existing file keeps its permission bits; a new one gets the usual umask.
- A symlink is followed: the file it points to is the one written, the link stays a link.
- A device (``/dev/null``), a FIFO or a process substitution is written directly, never
  replaced. So is a regular file with other hard links (renaming would detach them).
- A path through ``/dev/fd``, ``/dev/stdout`` or ``/proc/<pid>/fd`` (a process substitution,
  ``-o /dev/stdout``) is written directly: the descriptor the shell opened is the target.
- No output may be a file the run reads: an input, a ``--map``, an instrument definition or
  the history store. Files are compared by (device, inode), so a hard link, a symlink or a
  ``/proc/self/fd`` path to one of them is caught too (``UsageProblem``, exit 2).
- Every failure to write is a ``DataFileError`` (exit 5) naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from alliance_cli.core.errors import DataFileError, UsageProblem

MAX_DEFINITION_BYTES = 1024 * 1024  # instrument files and --map files; larger ones are refused
MAX_SIDE_BYTES = 64 * 1024 * 1024  # --sessions, --dictionary, --questionnaire files
STDOUT = "-"


class PipeGuard:
    """Standard output that survives its reader going away (``alliance batch ... | head``).

    After a broken pipe, writes are discarded and ``broken`` is set: the batch goes on
    scoring, rejecting and saving every row, and says that the output was cut short.
    """

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.broken = False

    def write(self, text: str) -> int:
        """Write, or discard once the reader has gone."""
        if not self.broken:
            try:
                return self.out.write(text)
            except BrokenPipeError:
                self._gone()
        return len(text)

    def flush(self) -> None:
        """Flush, noting a reader that has gone."""
        if not self.broken:
            try:
                self.out.flush()
            except BrokenPipeError:
                self._gone()

    def _gone(self) -> None:
        self.broken = True
        # Point fd 1 at /dev/null so the interpreter's own flush at exit stays quiet.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, self.out.fileno())
        os.close(devnull)


# What this run reads: identity key -> how to name it ("the history h.sqlite"). Reset by
# every command (cli.common.funnel), so one process running several commands never mixes them.
_READS: dict[tuple[object, ...], str] = {}
_FD_PATHS = ("/dev/fd/", "/dev/stdout", "/dev/stderr", "/proc/")


def _keys(path: Path | str) -> list[tuple[object, ...]]:
    """How a file is recognised: its real path and, once it exists, its (device, inode).
    Devices, FIFOs and sockets have none: they are never "the same file" as an output."""
    text = str(path)
    try:
        info = os.stat(text)
    except OSError:
        return [("path", os.path.realpath(text))]
    if not stat.S_ISREG(info.st_mode):
        return []
    return [("path", os.path.realpath(text)), ("inode", info.st_dev, info.st_ino)]


def note_read(path: Path | str, what: str) -> None:
    """Remember that this run reads ``path`` (named ``what``): no output may be it."""
    if str(path) == STDOUT or not str(path).strip():
        return
    for key in _keys(path):
        _READS.setdefault(key, f"{what} {path}")


def forget_reads() -> None:
    """Start a new run: nothing is read yet."""
    _READS.clear()


def _through_fd(text: str) -> bool:
    """A path that names an open descriptor (process substitution, /dev/stdout)."""
    return text.startswith(_FD_PATHS)


def _refuse_read(target: Path | str, what: str) -> None:
    for key in _keys(target):
        if key in _READS:
            raise UsageProblem(
                f"{what} {target} is {_READS[key]}, which this run reads; it is never "
                "overwritten: give another file"
            )


SCRATCH_PREFIX = "alliance-scratch-"  # + kind, process id and a random tail


@contextlib.contextmanager
def scratch(kind: str) -> Iterator[str]:
    """A private temporary folder for one run's intermediate files, named
    ``alliance-scratch-<kind>-<pid>-…`` so it is recognisable; removed when the run ends.
    Folders left by runs that were killed (SIGKILL: no clean-up runs) are removed first,
    when their process is gone and they belong to this user."""
    import tempfile

    sweep_scratch(tempfile.gettempdir())
    with tempfile.TemporaryDirectory(prefix=f"{SCRATCH_PREFIX}{kind}-{os.getpid()}-") as path:
        yield path


def sweep_scratch(where: str) -> int:
    """Remove this user's scratch folders whose process has ended; how many were removed."""
    import shutil

    removed = 0
    try:
        entries = list(os.scandir(where))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.startswith(SCRATCH_PREFIX):
            continue
        parts = entry.name[len(SCRATCH_PREFIX) :].split("-")
        if len(parts) < 3 or not parts[1].isdigit():
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid() or not entry.is_dir(
                follow_symlinks=False
            ):
                continue
            os.kill(int(parts[1]), 0)
            continue  # its process still runs
        except ProcessLookupError:
            pass
        except (PermissionError, OSError):
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        removed += 1
    return removed


def stamps(names: Sequence[str]) -> dict[str, tuple[int, int, int, int]]:
    """(device, inode, size, modification time) of each regular input file, to tell later
    whether it changed while it was read (stdin, pipes and devices have none)."""
    out: dict[str, tuple[int, int, int, int]] = {}
    for name in names:
        if name == STDOUT:
            continue
        try:
            info = os.stat(name)
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            out[name] = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
    return out


def check_unchanged(before: dict[str, tuple[int, int, int, int]]) -> None:
    """Refuse (exit 5) a result read from a file that grew, shrank or was replaced while it
    was read: some rows may be missing or read twice."""
    for name, was in before.items():
        now = stamps([name]).get(name)
        if now != was:
            raise DataFileError(
                f"{name}: the file changed while it was read (it grew, shrank or was "
                "replaced); nothing was written or saved: run again once it is complete"
            )


def _resolved(target: Path) -> Path:
    """The file a path names, symlinks followed (a dangling link names its target)."""
    return Path(os.path.realpath(target))


def check_output(target: Path | str, what: str) -> None:
    """Refuse, before anything is read, an output that cannot be written (exit 2 or 5)."""
    text = str(target)
    if text == STDOUT:
        return
    if not text.strip():
        raise UsageProblem(f"{what}: the path is empty")
    _refuse_read(text, what)
    real = _resolved(Path(text))
    try:
        info = os.stat(text)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise DataFileError(f"{text}: cannot write ({exc.strerror or exc})") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise DataFileError(f"{text}: is a directory; give a file name")
    if info is not None and (not stat.S_ISREG(info.st_mode) or _through_fd(text)):
        return  # a device, FIFO or open descriptor: written directly, checked when opened
    if info is None and _through_fd(text):
        raise DataFileError(f"{text}: no such open file")
    directory = real.parent
    if not directory.is_dir():
        raise DataFileError(f"{text}: the directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DataFileError(f"{text}: cannot write in {directory} (permission denied)")
    try:
        longest = os.pathconf(directory, "PC_NAME_MAX")
    except (OSError, ValueError):
        longest = 255
    if len(os.fsencode(real.name)) > longest:
        raise DataFileError(f"{text}: the file name is longer than {longest} bytes")


def check_distinct(outputs: Sequence[tuple[str, Path | str | None]], inputs: Sequence[str]) -> None:
    """Refuse two outputs that are one file (or both stdout), and an output that is a file
    this run reads (``inputs`` here, and whatever else ``note_read`` was told of)."""
    for name in inputs:
        note_read(name, "the input")
    seen: dict[tuple[object, ...], str] = {}
    for what, target in outputs:
        if target is None:
            continue
        keys = [("stdout",)] if str(target) == STDOUT else _keys(target)
        for key in keys:
            if key in seen:
                same = "standard output" if key == ("stdout",) else str(target)
                raise UsageProblem(
                    f"{seen[key]} and {what} are both {same}; give them different files"
                )
        for key in keys:
            seen[key] = what
        if str(target) != STDOUT:
            _refuse_read(target, what)


@contextlib.contextmanager
def safe_writer(target: Path | str, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Write text to target by the rules above; yields a handle (``newline=""``, for csv)."""
    if str(target) == STDOUT:
        out = sys.stdout
        if hasattr(out, "reconfigure"):
            out.reconfigure(newline="")
        guard = PipeGuard(out)
        yield guard  # type: ignore[misc]  # a text sink with write() and flush()
        guard.flush()
        return
    shown = str(target)
    real = _resolved(Path(target))
    try:
        info: os.stat_result | None = os.stat(shown)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise DataFileError(f"{shown}: cannot write ({exc.strerror or exc})") from None
    if info is not None and (
        not stat.S_ISREG(info.st_mode) or info.st_nlink > 1 or _through_fd(shown)
    ):
        with _direct(Path(shown), shown, encoding) as handle:
            yield handle
        return
    with _atomic(real, shown, encoding, info) as handle:
        yield handle


@contextlib.contextmanager
def _direct(real: Path, shown: str, encoding: str) -> Iterator[IO[str]]:
    """Write straight into a device, a FIFO or a hard-linked file."""
    try:
        handle = open(real, "w", encoding=encoding, newline="")  # noqa: SIM115
    except OSError as exc:
        raise DataFileError(f"{shown}: cannot write ({exc.strerror or exc})") from None
    try:
        with handle:
            yield handle
    except OSError as exc:
        if exc.errno == errno.EPIPE:
            raise
        raise DataFileError(f"{shown}: cannot write ({exc.strerror or exc})") from None


_HELD = ("SIGINT", "SIGTERM", "SIGHUP")  # the signals that end a run (cli.app unwinds them)


def _hold_signals() -> set[Any] | None:
    """Block the signals that end a run, where the platform can: returns the mask before."""
    import signal

    if not hasattr(signal, "pthread_sigmask"):
        return None
    wanted = {getattr(signal, name) for name in _HELD if hasattr(signal, name)}
    return set(signal.pthread_sigmask(signal.SIG_BLOCK, wanted))


def _release_signals(before: set[Any] | None) -> None:
    """Restore the mask ``_hold_signals`` returned: a signal held meanwhile arrives now."""
    import signal

    if before is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


@contextlib.contextmanager
def _atomic(
    real: Path, shown: str, encoding: str, info: os.stat_result | None
) -> Iterator[IO[str]]:
    """Write a temporary file beside real and rename it into place when complete."""
    import tempfile

    held = _hold_signals()  # a signal between creating the file and the try below: kept
    try:
        # a short name, so a target near the length limit still has room for its temp file
        fd, tmp = tempfile.mkstemp(prefix=".alliance-", suffix=".part", dir=real.parent)
    except OSError as exc:
        _release_signals(held)
        raise DataFileError(f"{shown}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        _release_signals(held)
        raise
    try:
        _release_signals(held)  # one that came meanwhile unwinds here, removing the file
        if info is not None:
            os.fchmod(fd, stat.S_IMODE(info.st_mode))  # an existing file keeps its mode
            with contextlib.suppress(OSError):  # and, where allowed, its owner
                os.fchown(fd, info.st_uid, info.st_gid)
        else:
            umask = os.umask(0)
            os.umask(umask)
            os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding=encoding, newline="", buffering=1 << 20) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, real)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise DataFileError(f"{shown}: cannot write ({exc.strerror or exc})") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_at_most(path: Path, limit: int) -> bytes:
    """A file's bytes, but never more than ``limit`` + 1 of them: a longer file (or a device
    or FIFO that never ends, whose size says 0) is told by the length, not held in memory."""
    with open(path, "rb") as handle:
        return handle.read(limit + 1)


def read_side_file(path: Path, option: str) -> str:
    """The text of a file an option names beside the inputs (``--sessions``,
    ``--dictionary``, ``--questionnaire``): noted as read (no output may replace it), at most
    ``MAX_SIDE_BYTES`` read (a device or FIFO that never ends is refused, not held in
    memory), UTF-8 with or without a BOM. Errors name the file and the option."""
    note_read(path, f"the {option} file")
    try:
        raw = read_at_most(path, MAX_SIDE_BYTES)
    except IsADirectoryError:
        raise DataFileError(f"{path}: {option}: is a directory") from None
    except OSError as exc:
        raise DataFileError(f"{path}: {option}: cannot read it ({exc.strerror or exc})") from None
    if len(raw) > MAX_SIDE_BYTES:
        raise DataFileError(
            f"{path}: {option}: larger than {MAX_SIDE_BYTES // (1024 * 1024)} MiB; refused"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{path}: {option}: not UTF-8 text (byte {exc.start})") from None
