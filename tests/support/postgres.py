"""A throwaway PostgreSQL cluster started from the installed server binaries.

Tests that need PostgreSQL skip, with the reason, only where no server binaries exist.
As root (CI here runs as root) the cluster runs as the `postgres` system user, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from .net import free_port


def find_bindir() -> Path | None:
    candidates = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    candidates += [os.path.dirname(p) for p in filter(None, [shutil.which("initdb")])]
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (
            Path(candidate) / "pg_ctl"
        ).exists():
            return Path(candidate)
    return None


class PostgresCluster:
    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="sikkerby-pg-"))
        self.datadir = self.root / "data"
        self.socketdir = self.root / "sock"
        self.port = free_port()
        self.user = "sikkerby"
        self.password = uuid.uuid4().hex
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]
        self.socketdir.mkdir()
        if self._run_as:
            shutil.chown(self.socketdir, "postgres", "postgres")

    def _pg(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self._run_as, str(self.bindir / tool), *args],
                              capture_output=True, text=True, check=check)

    def start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        if self._run_as:
            shutil.chown(pwfile, "postgres", "postgres")
        self._pg("initdb", "-D", str(self.datadir), "-U", self.user, "--pwfile", str(pwfile),
                 "-A", "scram-sha-256", "-E", "UTF8", "--no-sync")
        self.pg_ctl_start()

    def pg_ctl_start(self) -> None:
        options = (f"-p {self.port} -k {self.socketdir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c max_connections=300 -c shared_buffers=128MB")
        self._pg("pg_ctl", "-D", str(self.datadir), "-o", options, "-l",
                 str(self.root / "log"), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop", check=False)

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return (f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/"
                f"{database}")

    def create_database(self, prefix: str = "t") -> str:
        import psycopg

        name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        for attempt in range(50):
            try:
                with psycopg.connect(self.url("postgres").replace("+psycopg", ""),
                                     autocommit=True) as connection:
                    connection.execute(f'CREATE DATABASE "{name}"')
                return self.url(name)
            except psycopg.OperationalError:
                if attempt == 49:
                    raise
                time.sleep(0.2)
        raise AssertionError("unreachable")
