"""Files: how large a definition may be, and writing so that nothing is lost (atomic
replacement of regular files)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from alliance_cli.core.errors import DataFileError

MAX_DEFINITION_BYTES = 1024 * 1024  # instrument files and --map files; larger ones are refused


@contextlib.contextmanager
def atomic_writer(target: Path, encoding: str = "utf-8") -> Iterator[IO[str]]:
    """Write to a temporary file beside target and rename it into place on success.

    An interrupted or failed run leaves the previous file (or nothing) at target.
    """
    import tempfile

    directory = target.parent if str(target.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=directory)
    except OSError as exc:
        raise DataFileError(f"{target}: cannot write ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, "w", encoding=encoding, newline="", buffering=1 << 20) as handle:
            yield handle
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
