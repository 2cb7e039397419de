"""A throw-away PostgreSQL server for tests: initdb and pg_ctl on a temporary folder, reached
through a Unix socket there (no TCP port), run as the `postgres` user when the tests run as root
(the server refuses root). Debian's `postgresql` package provides the binaries (`make venv`
installs it); outside CI a machine without them skips the tests that need a server, in CI
(CI=true) they fail."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile

import pytest

PORT = 54329  # names the socket file in the server's own folder; no TCP port is opened


def server_binaries() -> str | None:
    """The folder of initdb and pg_ctl (Debian keeps them off PATH), or None."""
    found = shutil.which("pg_ctl")
    if found:
        return os.path.dirname(found)
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[-3])
    )
    return os.path.dirname(versions[-1]) if versions else None


@contextlib.contextmanager
def postgres_server():
    """Yield the URL of a fresh PostgreSQL database; the server is stopped and its folder
    removed afterwards."""
    binaries = server_binaries()
    if binaries is None:
        message = (
            "PostgreSQL server binaries (initdb, pg_ctl) not found: apt-get install postgresql"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run the PostgreSQL tests)")
        pytest.skip(message)
    root = os.geteuid() == 0
    # In /tmp itself: a test worker's own temporary folder is private to root, and the server's
    # user must reach its files.
    folder = tempfile.mkdtemp(prefix="zoo-postgres-", dir="/tmp" if os.path.isdir("/tmp") else None)
    if root:  # the server refuses to run as root: its files belong to the postgres user
        import pwd

        account = pwd.getpwnam("postgres")
        os.chown(folder, account.pw_uid, account.pw_gid)
    data, log = os.path.join(folder, "data"), os.path.join(folder, "server.log")

    def run(*command):
        subprocess.run(
            [os.path.join(binaries, command[0]), *command[1:]],
            check=True,
            capture_output=True,
            user="postgres" if root else None,
            timeout=120,
        )

    try:
        run("initdb", "-D", data, "-U", "zoo", "--auth=trust", "-E", "UTF8", "--no-sync")
        run(
            "pg_ctl",
            "-D",
            data,
            "-l",
            log,
            "-w",
            "-t",
            "60",
            "start",
            "-o",
            f"-k {folder} -c listen_addresses='' -c fsync=off -p {PORT}",
        )
    except subprocess.CalledProcessError as error:
        tail = open(log).read()[-2000:] if os.path.isfile(log) else ""
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(
            f"PostgreSQL did not start: {error.stderr.decode()[-2000:]}{tail}"
        ) from None
    try:
        yield f"postgresql://zoo@/postgres?host={folder}&port={PORT}"
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            run("pg_ctl", "-D", data, "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
