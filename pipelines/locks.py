"""What the tool may remove in a run directory: only what carries its own marker.

    with RunLock(run_dir):                # one writer (train)
    with RunLock(run_dir, shared=True):   # any number of readers (evaluate, sample, export, ...)
    with staging(run_dir) as (folder, commit): ...

The lock is `run_dir/.lock`, held with flock(2): the kernel releases it when its process dies,
so a lock left behind by a killed process is free to take, and nothing is ever judged stale and
deleted. The file names its holder (host, pid) after the tool's marker; a `.lock` without the
marker is not the tool's, so the folder is refused and the file left as it is.

A staging folder (`.prepare-*`) holds a new run's inputs until its model is built. It carries a
marker file too; only the owner of the run's lock removes a marked one that a killed attempt
left, and only after every refusal check has passed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import tempfile
import time

LOCK = ".lock"
LOCK_MARKER = "lstm-zoo run lock"
STAGING_PREFIX = ".prepare-"
STAGING_MARKER = ".lstm-zoo-staging"
_CREATING_WAIT_S = 2.0  # a lock file just created is empty until its creator writes it


class RunLock:
    """`run_dir` held by this process: exclusively (a writer) or shared (a reader).

    An exclusive lock creates `run_dir` if needed and removes the folders it created when they
    are left empty (a failed first attempt leaves nothing). A shared lock needs `run_dir`, and
    on a folder this user cannot write to it holds nothing (no writer can change it either).
    FileExistsError when another command holds the lock in a conflicting way; ValueError when
    `.lock` is not the tool's.
    """

    def __init__(self, run_dir, shared=False):
        self.run_dir, self.shared = os.fspath(run_dir), shared
        self.path = os.path.join(self.run_dir, LOCK)
        self.created, self.fd = [], None  # the folders this lock made, innermost first

    def __enter__(self):
        if os.path.exists(self.run_dir) and not os.path.isdir(self.run_dir):
            raise NotADirectoryError(
                f"{self.run_dir}: not a folder; a run directory is one (choose another path)"
            )
        if not self.shared:
            folder = os.path.abspath(self.run_dir)
            while not os.path.isdir(folder):
                self.created.append(folder)
                folder = os.path.dirname(folder)
            os.makedirs(self.run_dir, exist_ok=True)
        try:
            self.fd = self._acquire()
        except BaseException:
            self._remove_created()
            raise
        return self

    def _acquire(self):
        if self.shared and not os.path.isdir(self.run_dir):
            return None  # nothing to protect: reading it fails with its own message
        deadline = time.monotonic() + _CREATING_WAIT_S
        while True:
            try:
                fd, created = os.open(self.path, os.O_RDWR), False
            except FileNotFoundError:
                try:
                    fd, created = (
                        os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644),
                        True,
                    )
                except FileExistsError:
                    continue  # another command created it first: open theirs
            except OSError as error:
                if self.shared and error.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
                    return None  # a read-only run: nobody can write it while we read
                raise
            try:
                held = self._lock(fd, created, deadline)
            except BaseException:
                os.close(fd)
                raise
            if held:
                return fd
            os.close(fd)

    def _lock(self, fd, created, deadline) -> bool:
        """Lock `fd`; False when the file at the path changed meanwhile (try again)."""
        if not created:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            if not text and time.monotonic() < deadline:
                time.sleep(0.02)
                return False  # being created: its holder writes it next
            if not text.startswith(LOCK_MARKER):
                raise ValueError(
                    f"{self.path}: not an lstm-zoo lock file, so {self.run_dir} is "
                    "not an lstm-zoo run; the file is left as it is"
                )
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FileExistsError(
                f"{self.run_dir}: in use by {holder(self.path)} (another lstm-zoo command); "
                "wait for it to finish or choose another --run_dir"
            ) from None
        try:
            if not os.path.samestat(os.fstat(fd), os.stat(self.path)):
                return False  # its holder removed it on leaving: take the new one
        except FileNotFoundError:
            return False
        mine = f"{LOCK_MARKER}: {socket.gethostname()} {os.getpid()}\n".encode()
        if created or not self.shared:  # the marker bytes are rewritten unchanged
            os.pwrite(fd, mine, 0)
            os.ftruncate(fd, len(mine))
        return True

    def __exit__(self, *exc):
        if self.fd is not None:
            try:
                if self.shared:  # the last reader out removes the file
                    fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                os.remove(self.path)  # while held: a waiting command then opens a new one
            except OSError:
                pass  # other readers hold it
            finally:
                os.close(self.fd)
                self.fd = None
        self._remove_created()

    def _remove_created(self):
        for folder in self.created:
            try:
                os.rmdir(folder)
            except OSError:
                break  # not empty: the run started
        self.created = []


def holder(path) -> str:
    """'process PID' (on HOST when it is another host) named in lock file `path`."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            host, pid = f.readline()[len(LOCK_MARKER) + 1 :].split()
    except (OSError, ValueError):
        return "another process"
    return f"process {pid}" + ("" if host == socket.gethostname() else f" on {host}")


def is_staging(path) -> bool:
    """Whether `path` is a staging folder the tool made (it holds the marker file)."""
    return os.path.basename(path).startswith(STAGING_PREFIX) and os.path.isfile(
        os.path.join(path, STAGING_MARKER)
    )


def remove_stale_staging(run_dir):
    """Remove the marked staging folders of killed attempts; call it holding the run's lock."""
    for name in os.listdir(run_dir):
        path = os.path.join(run_dir, name)
        if is_staging(path):
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def staging(run_dir):
    """A fresh, marked folder in `run_dir` for a new run's inputs; `commit()` moves them in."""
    folder = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=run_dir)
    with open(os.path.join(folder, STAGING_MARKER), "w", encoding="utf-8") as f:
        f.write(f"{socket.gethostname()} {os.getpid()}\n")

    def commit():
        for name in os.listdir(folder):
            if name != STAGING_MARKER:
                os.replace(os.path.join(folder, name), os.path.join(run_dir, name))

    try:
        yield folder, commit
    finally:
        shutil.rmtree(folder, ignore_errors=True)
