"""The one way tunesmith writes a file: atomically, through a fresh temporary file.

The temporary file is created with ``mkstemp`` (O_CREAT | O_EXCL, mode 0600, a random
name) in the destination's folder, so a link planted beside the destination is never
followed and two writers never share a temporary name; it is flushed, fsynced and
renamed over the destination, so a reader sees the old file or the new one, never
half of one. JSON is written strictly: NaN and ±Infinity (which browsers' JSON parsers
reject) become null.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def finite(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf; numpy's too) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    if hasattr(obj, "item") and hasattr(obj, "dtype") and getattr(obj, "ndim", 1) == 0:  # numpy / torch scalar
        return finite(obj.item())
    if hasattr(obj, "tolist") and hasattr(obj, "dtype"):  # numpy array
        return finite(obj.tolist())
    return obj


def dumps(obj: Any, **kw) -> str:
    """Strict JSON: non-finite numbers become null; never writes NaN or Infinity."""
    return json.dumps(finite(obj), allow_nan=False, **kw)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would have made: mkstemp's own 0600 would hide outputs from others


def fresh_temporary(path: Path, suffix: str = ".part") -> tuple[int, str]:
    """A new temporary file beside ``path`` (random name, O_EXCL) with the usual file mode."""
    # a short prefix: a name near the file system's limit must not fail only for its temporary
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:32]}.", suffix=suffix, dir=path.parent)
    os.fchmod(fd, FILE_MODE)
    return fd, tmp


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = fresh_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_npz(path: str | Path, *, compressed: bool = False, **arrays) -> Path:
    """NumPy arrays as one .npz, written whole through a fresh temporary (never a predictable
    name) and renamed into place."""
    import io

    import numpy as np

    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode())


def write_json(path: str | Path, obj: Any, *, indent: int | None = 1) -> Path:
    return atomic_write_bytes(path, dumps(obj, indent=indent).encode())


def tunesmith_home() -> Path:
    """Where tunesmith keeps datasets, the search index, the store and runs:
    ``$TUNESMITH_HOME``, by default ``~/.cache/tunesmith``."""
    return Path(os.environ.get("TUNESMITH_HOME", Path.home() / ".cache" / "tunesmith"))


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (a rename into it) durable; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    except OSError:
        pass


@contextlib.contextmanager
def replaced_folder(path: str | Path):
    """Build a folder's new contents beside it and swap them in whole.

    Yields ``path.tmp`` (emptied first) to fill. When the block ends, the files in it are
    fsynced, the old folder is moved to ``path.old``, the new one renamed into place and the
    old one deleted: a kill at any moment leaves the old folder or the new one, never a
    torn one. If the block raises, nothing is swapped (the next call clears ``path.tmp``)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    old = path.with_name(path.name + ".old")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    yield tmp
    for f in tmp.iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
    fsync_dir(tmp)
    if path.exists():
        if old.exists():
            shutil.rmtree(old)
        os.rename(path, old)
    os.rename(tmp, path)
    fsync_dir(path.parent)
    if old.exists():
        shutil.rmtree(old)


_NOTED: set[str] = set()


class third_party_log:
    """Route what a library prints (C code on file descriptor 2 as well as Python's
    ``sys.stderr`` and warnings) into ``$TUNESMITH_HOME/logs/NAME.log`` for the duration, and
    say once per process where it went when anything was written. ``TUNESMITH_VERBOSE=1``
    leaves the terminal alone."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        import sys
        import warnings

        self.active = os.environ.get("TUNESMITH_VERBOSE") not in ("1", "true", "yes")
        if not self.active:
            return self
        self.log = tunesmith_home() / "logs" / f"{self.name}.log"
        try:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self.fh = open(self.log, "ab")
        except OSError:
            self.active = False
            return self
        self.before = self.fh.tell()
        sys.stderr.flush()
        self.saved_fd = os.dup(2)
        os.dup2(self.fh.fileno(), 2)
        self.saved_stderr = sys.stderr
        sys.stderr = open(os.dup(self.fh.fileno()), "w", closefd=True)
        self.warn = warnings.catch_warnings()
        self.warn.__enter__()
        warnings.simplefilter("always")
        warnings.showwarning = lambda msg, cat, fn, ln, file=None, line=None: print(
            f"{cat.__name__}: {msg}", file=sys.stderr)
        return self

    def __exit__(self, *exc):
        import sys

        if not self.active:
            return False
        self.warn.__exit__(*exc)
        sys.stderr.flush()
        sys.stderr.close()
        sys.stderr = self.saved_stderr
        os.dup2(self.saved_fd, 2)
        os.close(self.saved_fd)
        wrote = self.fh.tell() > self.before
        self.fh.close()
        failed = exc and exc[0] is not None  # the error will be the one line; the log is still there
        if wrote and not failed and self.name not in _NOTED:
            _NOTED.add(self.name)
            print(f"tunesmith: note: {self.name} printed messages; they are in {self.log}", file=sys.stderr)
        return False
