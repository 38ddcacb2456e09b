"""`sikkerby`: run the whole system, migrate, rotate keys.

    sikkerby up [--demo]     migrate, then start the four services and the gateway
    sikkerby migrate         apply every service's migrations to its database
    sikkerby keys rotate     add a new signing key; old ones stay until their tokens expire
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx

from services.platform.crypto import ensure_dev_secrets
from services.platform.db import make_engine, new_session
from services.platform.migrate import upgrade_all
from services.platform.scopes import SERVICE_CLIENT_SCOPES, Role
from services.platform.settings import DOWNSTREAM_SERVICES, ServiceName, Settings, SettingsError

from .demo import load_demo
from .demo import summary as demo_summary
from .keys import ensure_key_file, rotate_keys
from .logic import create_client, ensure_client

APP_FACTORIES = {
    ServiceName.citizens: "services.citizens.app:create_app",
    ServiceName.providers: "services.providers.app:create_app",
    ServiceName.activation: "services.activation.app:create_app",
    ServiceName.security: "services.security.app:create_app",
    ServiceName.gateway: "gateway.app:create_app",
}


def _say(text: str) -> None:
    print(text, flush=True)


def ensure_configured_clients(settings: Settings, *, generate_missing: bool) -> dict[str, str]:
    """The bootstrap admin and each service's own client (with only the scopes its calls
    need). A service client's secret comes from the settings when given (production);
    else, with `generate_missing`, a fresh one is made (`sikkerby up`). Returns the
    secrets, keyed for the child processes."""
    made: dict[str, str] = {}
    engine = make_engine(settings.database_url(ServiceName.gateway))
    with new_session(engine) as session:
        if settings.admin_client_id and settings.admin_client_secret:
            ensure_client(session, client_id=settings.admin_client_id,
                          secret=settings.admin_client_secret.get_secret_value(),
                          name="bootstrap admin", role=Role.admin)
        for service in DOWNSTREAM_SERVICES:
            scopes = SERVICE_CLIENT_SCOPES[service.value]
            if not scopes:
                continue
            configured = getattr(settings, f"{service.value}_service_client_secret", None)
            if configured is None and not generate_missing:
                continue
            secret = configured.get_secret_value() if configured else secrets.token_urlsafe(32)
            ensure_client(session, client_id=f"svc-{service.value}", secret=secret,
                          name=f"{service.value} service", role=Role.service, scopes=scopes)
            made[f"{service.value.upper()}_SERVICE_CLIENT_SECRET"] = secret
        session.commit()
    engine.dispose()
    return made


def prepare(settings: Settings) -> dict[str, str]:
    """Keys, migrations and configured clients. Returns env for the child processes."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    env = ensure_dev_secrets(settings) if settings.env != "production" else {}
    ensure_key_file(settings.signing_key_path, allow_generate=settings.env != "production")
    upgrade_all(settings)
    env.update(ensure_configured_clients(settings, generate_missing=True))
    return env


def create_demo_clients(settings: Settings) -> list[dict[str, str]]:
    engine = make_engine(settings.database_url(ServiceName.gateway))
    created = []
    with new_session(engine) as session:
        for role in Role:
            if role in (Role.service, Role.provider):
                continue
            new = create_client(session, name=f"demo {role.value}", role=role, provider_id=None)
            created.append({"role": role.value, "client_id": new.client.client_id,
                            "client_secret": new.secret})
        session.commit()
    engine.dispose()
    return created


def _child_env(settings: Settings, shared: dict[str, str], service: ServiceName) -> dict[str, str]:
    env = dict(os.environ)
    env["SIKKERBY_DATA_DIR"] = str(settings.data_dir.resolve())
    env["SIKKERBY_GATEWAY_URL"] = settings.public_gateway_url
    for key, value in shared.items():
        if key.startswith("SIKKERBY_"):
            env[key] = value
    secret = shared.get(f"{service.value.upper()}_SERVICE_CLIENT_SECRET")
    if secret:
        env["SIKKERBY_SERVICE_CLIENT_ID"] = f"svc-{service.value}"
        env["SIKKERBY_SERVICE_CLIENT_SECRET"] = secret
    else:
        env.pop("SIKKERBY_SERVICE_CLIENT_SECRET", None)
    # The gateway holds the admin secret; the services never need it.
    if service is not ServiceName.gateway:
        env.pop("SIKKERBY_ADMIN_CLIENT_SECRET", None)
    return env


def _spawn(settings: Settings, shared: dict[str, str], service: ServiceName) -> subprocess.Popen:
    if service is ServiceName.gateway:
        host, port = settings.host, settings.port
    else:
        parts = urlsplit(settings.service_url(service))
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
    command = [sys.executable, "-m", "uvicorn", "--factory", APP_FACTORIES[service],
               "--host", host, "--port", str(port), "--no-access-log",
               "--log-level", "warning"]
    return subprocess.Popen(command, env=_child_env(settings, shared, service))  # noqa: S603


def _wait_ready(settings: Settings, children: dict[ServiceName, subprocess.Popen],
                timeout: float = 60.0) -> bool:
    url = f"http://{settings.host}:{settings.port}/readyz"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(child.poll() is not None for child in children.values()):
            return False
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    return False


def _stop(children: dict[ServiceName, subprocess.Popen]) -> None:
    for child in children.values():
        if child.poll() is None:
            child.terminate()
    deadline = time.monotonic() + 10
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()


def up(settings: Settings, demo: bool) -> int:
    shared = prepare(settings)
    demo_clients = create_demo_clients(settings) if demo else []
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    children: dict[ServiceName, subprocess.Popen] = {}
    for service in (*DOWNSTREAM_SERVICES, ServiceName.gateway):
        children[service] = _spawn(settings, shared, service)
    try:
        if not _wait_ready(settings, children):
            if stopping:
                return 0
            _say("sikkerby: the system did not become ready; stopping.")
            return 1
        gateway = f"http://{settings.host}:{settings.port}"
        _say(f"sikkerby is up: {gateway} (API docs at {gateway}/docs)")
        if demo_clients:
            _say(demo_summary(load_demo(gateway, demo_clients)))
            _say("Demo clients (secrets are shown once):")
            _say(json.dumps(demo_clients, indent=2))
        while not stopping:
            for service, child in children.items():
                if child.poll() is not None:
                    _say(f"sikkerby: {service.value} exited with {child.returncode}; stopping.")
                    return 1
            time.sleep(0.2)
        return 0
    finally:
        _stop(children)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sikkerby", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="start the whole system")
    up_parser.add_argument("--demo", action="store_true",
                           help="also create demo clients and print their credentials")
    commands.add_parser("migrate", help="apply the migrations to every service's database "
                        "and create the configured clients (admin, services)")
    keys = commands.add_parser("keys", help="signing keys")
    keys.add_argument("action", choices=["rotate"])
    args = parser.parse_args(argv)
    try:
        settings = Settings()
        if args.command == "up":
            return up(settings, args.demo)
        if args.command == "migrate":
            upgrade_all(settings)
            # Only clients whose secrets are configured; `up` makes the rest itself.
            ensure_configured_clients(settings, generate_missing=False)
            _say("migrations applied")
            return 0
        kid = rotate_keys(settings.signing_key_path)
        _say(f"new signing key {kid} is active; older keys stay published until their "
             "tokens expire")
        return 0
    except SettingsError as exc:
        _say(f"sikkerby: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
