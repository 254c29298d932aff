"""Small file helpers shared by every stage: atomic writes and line-numbered reads."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, binary: bool = False) -> Iterator[IO]:
    """Open a temporary file beside `path`; on success fsync and rename it over `path`.

    A crash or an exception leaves the old file (or nothing) in place, never a half-written one: rename is atomic
    on POSIX when source and target share a directory, which is why the temporary file lives beside the target.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8", "newline": "\n"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def iter_lines(path: str | os.PathLike) -> Iterator[tuple[int, bytes]]:
    """Yield (1-based line number, raw bytes without the newline). Bytes, so that invalid UTF-8 can be reported
    with its line number instead of failing inside the decoder."""
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            yield lineno, raw.rstrip(b"\r\n")


@contextlib.contextmanager
def atomic_files(folder: str | os.PathLike, marker: str) -> Iterator[Path]:
    """Write a set of files into `folder` so that `marker` exists only once all of them do.

    Yields a temporary folder inside `folder`; on success the old marker is removed first, every file is moved into
    `folder` (renames, atomic one by one) and the marker last. Readers treat a folder without its marker as
    incomplete, so a crash at any point never leaves a folder that looks complete but is not. Other files already
    in `folder` (logs, a checkpoint) stay."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".save.", dir=folder))
    try:
        yield tmp
        (folder / marker).unlink(missing_ok=True)
        for f in sorted(tmp.iterdir(), key=lambda p: p.name == marker):
            os.replace(f, folder / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
