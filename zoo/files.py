"""Files written atomically and JSON read with errors that name the file: one helper per job.

with atomic_path("runs/x/last.keras") as tmp:  # a unique temporary name beside it
    model.save(tmp)                             # replaces the target only on success
atomic_write("runs/x/config.json", text)
config = read_json("runs/x/config.json", expect=dict)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a fresh temporary file name beside `path` (same suffix); it replaces `path` on success.

    The name is unique (`tempfile.mkstemp`), so two writers never share a temporary file; on any
    error, or if the block leaves nothing at the temporary name, `path` is left as it was.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    name = os.path.basename(path)
    suffix = os.path.splitext(name)[1]
    fd, tmp = tempfile.mkstemp(
        dir=directory, prefix=f".tmp-{os.path.splitext(name)[0]}-", suffix=suffix
    )
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o644)  # mkstemp makes files private
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write(path: str | os.PathLike, data: str | bytes) -> None:
    """Write `data` (text as UTF-8, or bytes) to `path`, never leaving it half-written."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data.encode("utf-8") if isinstance(data, str) else data)


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether paths `a` and `b` name the same file (through links too; False if either is
    missing)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def read_json(path: str | os.PathLike, expect: type | None = None):
    """The JSON value in `path`; ValueError naming the file (and line) when it is not valid.

    Args:
        expect: the type the top-level value must have (e.g. dict), or None for any.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            value = json.load(f)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"{path}: not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})"
        ) from None
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 ({error.reason} at byte {error.start})") from None
    if expect is not None and not isinstance(value, expect):
        kind = {dict: "an object", list: "a list"}.get(expect, expect.__name__)
        raise ValueError(f"{path}: expected {kind} in JSON, found {type(value).__name__}")
    return value


def read_error(path, error: OSError, doing: str = "") -> Exception:
    """A one-line error naming `path` for the OSError met reading it: FileNotFoundError if it
    is missing, else ValueError (the command line reports both without a traceback)."""
    if error.errno == errno.ENOENT:
        reason = "broken symbolic link" if os.path.islink(path) else "no such file or folder"
        return FileNotFoundError(f"{path}: {doing}{reason}")
    reason = {
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ELOOP: "symbolic link loop",
        errno.EISDIR: "is a folder, expected a file",
    }
    return ValueError(f"{path}: {doing}{reason.get(error.errno, error.strerror or error)}")
