"""Files: how large a definition may be, and writing so that nothing is damaged or lost.

The rules for every file alliance writes (``-o``, ``--rejects``):

- ``-`` is standard output.
- A regular file, or a path that does not exist yet, is written to a temporary file beside it
  and renamed into place when complete: an interrupted run leaves the old file or nothing.
  An existing file keeps its permission bits; a new one gets the usual umask.
- A symlink is followed: the file it points to is the one written, the link stays a link.
- A device (``/dev/null``), a FIFO or a process substitution is written directly, never
  replaced. So is a regular file with other hard links (renaming would detach them).
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
from typing import IO

from alliance_cli.core.errors import DataFileError, UsageProblem

MAX_DEFINITION_BYTES = 1024 * 1024  # instrument files and --map files; larger ones are refused
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
    real = _resolved(Path(text))
    try:
        info = real.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise DataFileError(f"{text}: cannot write ({exc.strerror or exc})") from None
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise DataFileError(f"{text}: is a directory; give a file name")
    if info is not None and not stat.S_ISREG(info.st_mode):
        return  # a device or FIFO: written directly, checked when opened
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
    """Refuse two outputs that are one file (or both stdout), and an output that is an input."""
    seen: dict[str, str] = {}
    for what, target in outputs:
        if target is None:
            continue
        key = STDOUT if str(target) == STDOUT else str(_resolved(Path(target)))
        if key in seen:
            same = "standard output" if key == STDOUT else str(target)
            raise UsageProblem(f"{seen[key]} and {what} are both {same}; give them different files")
        seen[key] = what
    for name in inputs:
        if name == STDOUT:
            continue
        key = str(_resolved(Path(name)))
        if key in seen:
            raise UsageProblem(
                f"{seen[key]} {name} is also an input; the input is never overwritten"
            )


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
        info: os.stat_result | None = real.stat()
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise DataFileError(f"{shown}: cannot write ({exc.strerror or exc})") from None
    if info is not None and (not stat.S_ISREG(info.st_mode) or info.st_nlink > 1):
        with _direct(real, shown, encoding) as handle:
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


@contextlib.contextmanager
def _atomic(
    real: Path, shown: str, encoding: str, info: os.stat_result | None
) -> Iterator[IO[str]]:
    """Write a temporary file beside real and rename it into place when complete."""
    import tempfile

    try:
        # a short name, so a target near the length limit still has room for its temp file
        fd, tmp = tempfile.mkstemp(prefix=".alliance-", suffix=".part", dir=real.parent)
    except OSError as exc:
        raise DataFileError(f"{shown}: cannot write ({exc.strerror or exc})") from None
    try:
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
