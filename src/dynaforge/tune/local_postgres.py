"""A throw-away PostgreSQL server on loopback, for tests, benchmarks and trying a shared study
on one machine (a cluster has its own server; see the README's SLURM example).

Uses the server binaries of an installed PostgreSQL (Debian: the ``postgresql`` package,
``/usr/lib/postgresql/<version>/bin``). PostgreSQL refuses to run as root; as root the cluster
is run as the ``postgres`` user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator


def server_binaries() -> str | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed."""
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(os.path.join(folder, "initdb")):
            return folder
    found = shutil.which("initdb")
    return os.path.dirname(found) if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_postgres(max_connections: int = 100) -> Iterator[str]:
    """Start a new cluster in a temporary folder on a free port; yield its URL
    (``postgresql://dynaforge@127.0.0.1:PORT/postgres``, trust authentication); stop and delete
    it on exit."""
    bindir = server_binaries()
    if bindir is None:
        raise FileNotFoundError(
            "PostgreSQL server binaries (initdb, pg_ctl) not found; install "
            "PostgreSQL (Debian: apt-get install postgresql)"
        )
    data = tempfile.mkdtemp(prefix="dynaforge-pg-")
    prefix = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]
        shutil.chown(data, "postgres", "postgres")
    port = _free_port()
    try:
        subprocess.run(
            [
                *prefix,
                f"{bindir}/initdb",
                "-D",
                data,
                "-A",
                "trust",
                "-U",
                "dynaforge",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
        )
        subprocess.run(
            [
                *prefix,
                f"{bindir}/pg_ctl",
                "-D",
                data,
                "-l",
                f"{data}/log",
                "-w",
                "-o",
                f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c max_connections={max_connections}",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        yield f"postgresql://dynaforge@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop"],
            capture_output=True,
        )
        shutil.rmtree(data, ignore_errors=True)
