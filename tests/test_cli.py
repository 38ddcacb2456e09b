"""`sikkerby` as a person runs it: the real command, real processes, real signals."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from .support.net import free_port

SIKKERBY = [sys.executable, "-m", "gateway.cli"]


def env_for(tmp_path: Path, **extra: str) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: free_port() for name in
             ("gateway", "citizens", "providers", "activation", "security")}
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIKKERBY_")}
    env.update({
        "SIKKERBY_DATA_DIR": str(tmp_path / "data"),
        "SIKKERBY_PORT": str(ports["gateway"]),
        **{f"SIKKERBY_{name.upper()}_URL": f"http://127.0.0.1:{port}"
           for name, port in ports.items() if name != "gateway"},
        "SIKKERBY_ADMIN_CLIENT_ID": "cli-admin",
        "SIKKERBY_ADMIN_CLIENT_SECRET": "cli-admin-credential-0123456789",
        **extra,
    })
    return env, ports


def wait_for_line(process: subprocess.Popen, needle: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                break
            continue
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"never printed {needle!r}; got:\n{''.join(seen)}")


def test_up_demo_serves_the_api_and_stops_on_sigterm(tmp_path: Path) -> None:
    env, ports = env_for(tmp_path)
    process = subprocess.Popen([*SIKKERBY, "up", "--demo"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        wait_for_line(process, "sikkerby is up")
        output = wait_for_line(process, "]")
        demo = json.loads(output[output.index("["):])
        roles = {c["role"] for c in demo}
        assert {"caseworker", "team_lead", "provider", "police", "security_officer",
                "analyst", "auditor", "admin"} == roles
        base = f"http://127.0.0.1:{ports['gateway']}"
        assert httpx.get(f"{base}/readyz").status_code == 200
        admin = next(c for c in demo if c["role"] == "admin")
        token = httpx.post(f"{base}/v1/auth/token", data={
            "grant_type": "client_credentials", "client_id": admin["client_id"],
            "client_secret": admin["client_secret"]}).json()["access_token"]
        listed = httpx.get(f"{base}/v1/providers", headers={"Authorization": f"Bearer {token}"})
        assert listed.status_code == 200 and len(listed.json()["items"]) == 2
        # The demo provider client sees its own provider only.
        provider = next(c for c in demo if c["role"] == "provider")
        provider_token = httpx.post(f"{base}/v1/auth/token", data={
            "grant_type": "client_credentials", "client_id": provider["client_id"],
            "client_secret": provider["client_secret"]}).json()["access_token"]
        own = httpx.get(f"{base}/v1/providers",
                        headers={"Authorization": f"Bearer {provider_token}"}).json()
        assert [p["id"] for p in own["items"]] == [provider["provider_id"]]
        # The bootstrap admin from the environment exists too.
        assert httpx.post(f"{base}/v1/auth/token", data={
            "grant_type": "client_credentials", "client_id": "cli-admin",
            "client_secret": "cli-admin-credential-0123456789"}).status_code == 200
        assert sorted(p.name for p in (tmp_path / "data").glob("*.db")) == [
            "activation.db", "citizens.db", "gateway.db", "providers.db", "security.db"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        # Every child is gone: nothing listens on any port any more.
        for port in ports.values():
            with socket.socket() as s:
                assert s.connect_ex(("127.0.0.1", port)) != 0
    finally:
        if process.poll() is None:
            process.kill()


def test_up_exits_non_zero_when_a_child_dies(tmp_path: Path) -> None:
    env, ports = env_for(tmp_path)
    # Something else holds the citizens port: that child cannot start and exits.
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", ports["citizens"]))
    blocker.listen(1)
    try:
        result = subprocess.run([*SIKKERBY, "up"], env=env, capture_output=True, text=True,
                                timeout=120, cwd=tmp_path)
    finally:
        blocker.close()
    assert result.returncode != 0
    assert "citizens" in result.stdout or "not become ready" in result.stdout
    for name, port in ports.items():
        if name == "citizens":
            continue
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, f"{name} still listens"


def test_production_refuses_sqlite_and_generated_keys(tmp_path: Path) -> None:
    env, _ = env_for(tmp_path, SIKKERBY_ENV="production")
    result = subprocess.run([*SIKKERBY, "migrate"], env=env, capture_output=True, text=True,
                            timeout=60, cwd=tmp_path)
    assert result.returncode == 2
    assert "SQLite is not allowed" in result.stdout
    assert not (tmp_path / "data").exists()


def test_migrate_and_keys_rotate(tmp_path: Path) -> None:
    env, _ = env_for(tmp_path, SIKKERBY_ACTIVATION_SERVICE_CLIENT_SECRET="svc-secret-" + "7" * 20)
    assert subprocess.run([*SIKKERBY, "migrate"], env=env, capture_output=True,
                          timeout=60, cwd=tmp_path).returncode == 0
    assert (tmp_path / "data" / "citizens.db").exists()
    # The configured clients exist: the admin, and the one service whose secret was given.
    import sqlite3

    with sqlite3.connect(tmp_path / "data" / "gateway.db") as db:
        clients = dict(db.execute("SELECT client_id, scopes FROM api_client").fetchall())
    assert set(clients) == {"cli-admin", "svc-activation"}
    assert "contracts:terms" in clients["svc-activation"]
    first = subprocess.run([*SIKKERBY, "keys", "rotate"], env=env, capture_output=True,
                           text=True, timeout=60, cwd=tmp_path)
    second = subprocess.run([*SIKKERBY, "keys", "rotate"], env=env, capture_output=True,
                            text=True, timeout=60, cwd=tmp_path)
    assert first.returncode == 0 and second.returncode == 0
    keys = json.loads((tmp_path / "data" / "keys" / "signing.json").read_text())["keys"]
    active = [k for k in keys if k["retired_at"] is None]
    assert len(keys) == 2 and len(active) == 1
    assert active[0]["kid"] in second.stdout
    mode = (tmp_path / "data" / "keys" / "signing.json").stat().st_mode
    assert mode & 0o077 == 0


@pytest.mark.parametrize("argv", [["--help"], ["up", "--help"]])
def test_help(argv: list[str]) -> None:
    result = subprocess.run([*SIKKERBY, *argv], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "sikkerby" in result.stdout
