"""`sikkerby`: run the whole system, migrate, rotate keys, apply retention.

    sikkerby up [--demo]     migrate, then start the four services and the gateway
    sikkerby migrate         apply every service's migrations to its database
    sikkerby keys rotate     add a new signing key; old ones stay until their tokens expire
    sikkerby retention run [--dry-run] [--today YYYY-MM-DD]
                             delete or anonymise what has passed its time
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
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

import httpx
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from services.activation import retention as activation_retention
from services.citizens import retention as citizens_retention
from services.platform import audit_retention
from services.platform.clock import LOCAL_ZONE, local_today
from services.platform.crypto import ensure_dev_secrets
from services.platform.db import make_engine, new_session
from services.platform.middleware import request_id_var
from services.platform.migrate import upgrade_all
from services.platform.scopes import SERVICE_CLIENT_SCOPES, Role
from services.platform.settings import (
    DOWNSTREAM_SERVICES,
    ServiceName,
    Settings,
    SettingsError,
    check_migration,
)
from services.security import retention as security_retention

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
    # Nor do they need the database owners' URLs: only the migration uses them.
    for name in ServiceName:
        env.pop(f"SIKKERBY_{name.value.upper()}_MIGRATION_DATABASE_URL", None)
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


@dataclass(frozen=True)
class RetentionActor:
    """Who the audit names for a retention run."""

    client_id: str = "sikkerby-retention"
    role: str = "system"


def retention_run(settings: Settings, *, today: date, dry_run: bool,
                  say: Callable[[str], None] = _say) -> int:
    """Apply the retention rules of each service to its own database (see
    `services/*/retention.py`), as of `today`. The activation service's clock starts at
    a citizen's exit, which the citizens service owns: this command, an operator's tool
    with every database's settings like `migrate`, reads the exits from the citizens
    database and hands them to the activation rule, so it runs whether or not the
    services are up. Each database changes in one transaction; a run that stops halfway
    is completed by the next (what is done is not found again). A dry run prints the
    same counts and changes nothing, not even the audit; a real run is recorded in the
    audit of each database it read or changed (`retention.*`, one request id per run)."""
    actor = RetentionActor()
    run_id = f"retention-{uuid.uuid4().hex[:16]}"
    token = request_id_var.set(run_id)

    def done(verb: str, past: str) -> str:
        return f"to {verb}" if dry_run else past

    check_migration(settings, "run retention")
    # As each database's owner, like `migrate`: only the owner may cut an audit chain.
    engines = {service: make_engine(settings.migration_database_url(service),
                                    busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                                    writer=not dry_run)
               for service in ServiceName}
    try:
        say(f"retention as of {today}" + (" (dry run: nothing is changed)" if dry_run
                                          else f", run {run_id}"))
        with new_session(engines[ServiceName.activation]) as activation:
            to_check = activation_retention.citizens_to_check(activation)
            with new_session(engines[ServiceName.citizens]) as citizens:
                periods = citizens_retention.periods_of(citizens, to_check)
                if not dry_run:
                    citizens_retention.record_run(citizens, actor, today=today,
                                                  citizens=len(to_check))
                    citizens.commit()
            placements = activation_retention.plan(activation, periods, today)
            if not dry_run:
                activation_retention.apply(activation, placements, actor, today)
                activation.commit()
        say(f"activation: {len(placements.placements)} placements of "
            f"{len(placements.citizens)} citizens {done('anonymise', 'anonymised')}, "
            f"{placements.attendance_versions} attendance versions "
            f"{done('delete', 'deleted')}, {len(placements.idempotency_keys)} stored "
            f"idempotent answers {done('delete', 'deleted')} "
            f"({activation_retention.RETENTION_YEARS} years after the citizen's exit)")
        with new_session(engines[ServiceName.security]) as security:
            assessments = security_retention.plan(security, today)
            if not dry_run:
                security_retention.apply(security, assessments, actor, today)
                security.commit()
        say(f"security: {len(assessments.assessments)} threat assessments and "
            f"{len(assessments.subjects)} subjects {done('delete', 'deleted')} "
            f"({security_retention.RETENTION_YEARS} year after an assessment stopped being "
            "in force)")
        return 0 if audit_retention_run(settings, engines, actor, today=today,
                                        dry_run=dry_run, say=say) else 1
    except SQLAlchemyError as exc:
        say(f"sikkerby: retention stopped ({type(exc).__name__}; are the databases migrated "
            "and reachable?). Each database changes whole or not at all; the next run "
            "completes what is left.")
        return 1
    finally:
        request_id_var.reset(token)
        for engine in engines.values():
            engine.dispose()


def audit_retention_run(settings: Settings, engines: Mapping[ServiceName, Engine],
                        actor: RetentionActor, *, today: date, dry_run: bool,
                        say: Callable[[str], None]) -> bool:
    """Cut every database's audit chain before the retention's cut-off (see
    services/platform/audit_retention.py). False when a chain did not verify: that
    chain keeps everything, the others are cut."""
    years = settings.audit_retention_years
    before = audit_retention.cut_off(today, years)
    all_verified = True
    for service, engine in engines.items():
        with new_session(engine) as session:
            try:
                done = (audit_retention.plan(session, before) if dry_run
                        else audit_retention.apply(session, actor, before))
                session.commit()
            except audit_retention.ChainNotVerified as exc:
                session.rollback()
                all_verified = False
                say(f"audit ({service.value}): not cut: {exc}")
                continue
        verb = "to delete" if dry_run else "deleted"
        say(f"audit ({service.value}): {done.entries} entries stamped before "
            f"{before.astimezone(LOCAL_ZONE).date()} {verb} ({years} years)")
    return all_verified


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError("a date as YYYY-MM-DD") from None


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
    retention = commands.add_parser(
        "retention", help="delete or anonymise what has passed its time")
    retention.add_argument("action", choices=["run"])
    retention.add_argument("--dry-run", action="store_true",
                           help="print what would be done and change nothing")
    retention.add_argument("--today", type=_day, default=None, metavar="YYYY-MM-DD",
                           help="the day to apply the rules as of (default: today in "
                           "Copenhagen)")
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
        if args.command == "retention":
            return retention_run(settings, today=args.today or local_today(),
                                 dry_run=args.dry_run)
        kid = rotate_keys(settings.signing_key_path)
        _say(f"new signing key {kid} is active; older keys stay published until their "
             "tokens expire")
        return 0
    except SettingsError as exc:
        _say(f"sikkerby: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
