"""The production-like deployment, checked without a Docker engine.

docker-compose.yml is read as compose reads it (YAML merge keys, `${...}` interpolation
from .env); the checks are about what can go wrong unseen until someone runs it: a
process missing, a port published, a setting misspelt, a secret committed, a database
without its role, and above all an environment that the production settings check would
refuse. Where PostgreSQL's server binaries are installed, deploy/postgres/init.sh also
runs for real, followed by `sikkerby migrate` with the migrate service's environment, and
the services' roles are tried: they may read and write, but not change the audit log.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from gateway.keys import rotate_keys
from services.platform.audit import append_entries, verify_chain
from services.platform.db import make_engine, new_session
from services.platform.migrate import upgrade_all
from services.platform.settings import (
    DEFAULT_SERVICE_PORTS,
    DOWNSTREAM_SERVICES,
    ServiceName,
    Settings,
    SettingsError,
    is_placeholder,
)

from .support.audit_log import REFUSED_ON_THE_AUDIT_LOG, audit_entries
from .support.postgres import PostgresCluster, find_bindir

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
ENV_EXAMPLE = ROOT / ".env.example"
INIT_SCRIPT = ROOT / "deploy" / "postgres" / "init.sh"

SERVICES = tuple(s.value for s in ServiceName)  # gateway and the four
DOWNSTREAM = tuple(s.value for s in DOWNSTREAM_SERVICES)
APP_SERVICES = ("migrate", *SERVICES)  # everything built from the Dockerfile
ALL_SERVICES = ("postgres", *APP_SERVICES)
SECRETISH = ("SECRET", "KEY", "PASSWORD", "DATABASE_URL")
SERVICE_CLIENTS = {"activation": "svc-activation", "security": "svc-security",
                   "citizens": "svc-citizens"}
GATEWAY_PORT = 8000
ALL_INTERFACES = "0.0.0.0"  # noqa: S104  (inside a container: its own interfaces)
SERVICE_PORTS = {s.value: port for s, port in DEFAULT_SERVICE_PORTS.items()}
FACTORIES = {s: f"services.{s}.app:create_app" for s in DOWNSTREAM}

INTERPOLATION = re.compile(
    r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def _hex(label: str) -> str:
    return hashlib.sha256(f"sikkerby compose test {label}".encode()).hexdigest()


def _key32(label: str) -> str:
    digest = hashlib.sha256(f"sikkerby compose test {label}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


# What an operator's .env holds: generated the way .env.example says, deterministic here.
REAL_ENV = {
    "POSTGRES_PASSWORD": _hex("postgres"),
    **{f"{s.upper()}_DB_OWNER_PASSWORD": _hex(f"{s} database owner") for s in SERVICES},
    **{f"{s.upper()}_DB_PASSWORD": _hex(f"{s} database") for s in SERVICES},
    "SIKKERBY_FIELD_ENCRYPTION_KEYS": f"k1:{_key32('field key 1')},k2:{_key32('field key 2')}",
    "SIKKERBY_FIELD_ENCRYPTION_ACTIVE_KEY": "k2",
    "SIKKERBY_HASH_KEY": _key32("hash key"),
    "SIKKERBY_ADMIN_CLIENT_ID": "ops-admin",
    "SIKKERBY_ADMIN_CLIENT_SECRET": _hex("admin client"),
    **{f"{s.upper()}_SERVICE_CLIENT_SECRET": _hex(f"{s} client") for s in SERVICE_CLIENTS},
}


class _ComposeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, but refusing duplicate keys as compose does."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def interpolate(text: str, variables: Mapping[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR:?error}` (and the forms without ':')."""

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        value = variables.get(name)
        if value is not None and not (value == "" and op and op.startswith(":")):
            return value
        if op in ("-", ":-"):
            return arg
        raise LookupError(f"compose would not start without {name}: {arg or 'unset'}")

    return INTERPOLATION.sub(replace, text.replace("$$", "\0")).replace("\0", "$")


def interpolated_names(value: object) -> Iterator[re.Match[str]]:
    if isinstance(value, dict):
        for item in value.values():
            yield from interpolated_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from interpolated_names(item)
    elif isinstance(value, str):
        yield from INTERPOLATION.finditer(value)


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.load(COMPOSE_FILE.read_text(), Loader=_ComposeLoader)  # noqa: S506


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment is written as a mapping"
    return {name: str(value) for name, value in env.items()}


def resolved_environment(service: dict[str, Any], key_file: Path) -> dict[str, str]:
    """A service's environment as the container gets it from a real .env, with the
    signing key file at a path that exists here."""
    env = {name: interpolate(value, REAL_ENV) for name, value in environment(service).items()}
    if "SIKKERBY_SIGNING_KEY_FILE" in env:
        env["SIKKERBY_SIGNING_KEY_FILE"] = str(key_file)
    return env


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "signing.json"
    rotate_keys(path)
    return path


def settings_from(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a process started with exactly this environment builds them."""
    for name in list(os.environ):
        if name.upper().startswith("SIKKERBY_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


def command_port(command: list[str]) -> int:
    return int(command[command.index("--port") + 1])


def healthcheck_url(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    match = re.search(r"urlopen\('([^']+)'", " ".join(test))
    assert match, f"healthcheck does not fetch a URL: {test}"
    return match[1]


# The compose file's shape --------------------------------------------------------------
def test_the_test_values_are_not_placeholders() -> None:
    for name, value in REAL_ENV.items():
        if "SECRET" in name or "HASH_KEY" in name:
            assert not is_placeholder(value), name
    for entry in REAL_ENV["SIKKERBY_FIELD_ENCRYPTION_KEYS"].split(","):
        assert not is_placeholder(entry.partition(":")[2])


def test_every_process_is_there(services: dict[str, Any]) -> None:
    assert set(services) == set(ALL_SERVICES)


def test_every_app_process_runs_the_one_image(services: dict[str, Any]) -> None:
    builds = {name: services[name].get("build") for name in APP_SERVICES}
    images = {name: services[name].get("image") for name in APP_SERVICES}
    for name, build in builds.items():
        assert build is not None, f"{name} does not build the image"
        build = {"context": build} if isinstance(build, str) else build
        assert build.get("context") in (".", "./"), name
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile", name
    assert len({str(b) for b in builds.values()}) == 1, builds
    assert len(set(images.values())) == 1 and None not in images.values(), images
    assert services["postgres"]["image"] == "postgres:15"


def test_each_process_runs_its_own_app(services: dict[str, Any]) -> None:
    assert services["migrate"]["command"] == ["sikkerby", "migrate"]
    assert services["migrate"]["restart"] == "no"
    for name in DOWNSTREAM:
        command = services[name]["command"]
        assert command[:5] == ["python", "-m", "uvicorn", "--factory", FACTORIES[name]], name
        assert command[command.index("--host") + 1] == ALL_INTERFACES, name
        assert command_port(command) == SERVICE_PORTS[name], name
        # The gateway forwards to the address the service listens on.
        url = environment(services["gateway"])[f"SIKKERBY_{name.upper()}_URL"]
        assert url == f"http://{name}:{SERVICE_PORTS[name]}"
    # The gateway runs the image's default command.
    assert "command" not in services["gateway"]
    cmd = re.search(r"^CMD\s+(\[.*\])\s*$", DOCKERFILE.read_text().replace("\\\n", ""), re.M)
    assert cmd, "the Dockerfile has an exec-form CMD"
    default = yaml.safe_load(cmd[1])
    assert "gateway.app:create_app" in default
    assert command_port(default) == GATEWAY_PORT
    assert default[default.index("--host") + 1] == ALL_INTERFACES


def test_the_dockerfile(services: dict[str, Any]) -> None:
    text = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"pip install \.(\s|$)", text), "installs the project itself"
    assert "[test]" not in text, "no test extras in the image"
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0"), "runs as non-root"
    ignored = DOCKERIGNORE.read_text().split()
    for entry in (".venv", "data", ".git", ".env"):
        assert entry in ignored or f"{entry}/" in ignored, entry
    assert any(p.endswith("cache/") or "__pycache__" in p for p in ignored)


def test_postgres_and_every_app_process_have_a_healthcheck(services: dict[str, Any]) -> None:
    test = services["postgres"]["healthcheck"]["test"]
    assert test[0] in ("CMD", "CMD-SHELL") and "pg_isready" in " ".join(test)
    for name in SERVICES:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
        url = healthcheck_url(services[name])
        if name == "gateway":
            # Not /readyz: the gateway's readiness asks the services, which depend on it.
            assert url == f"http://127.0.0.1:{GATEWAY_PORT}/healthz"
        else:
            assert url == f"http://127.0.0.1:{SERVICE_PORTS[name]}/readyz", name


def test_start_order(services: dict[str, Any]) -> None:
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in SERVICES:
        depends = services[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    gateway = services["gateway"]["depends_on"]
    for name in DOWNSTREAM:
        assert gateway[name]["condition"] == "service_healthy", name
        assert "gateway" not in services[name]["depends_on"], "no dependency cycle"


def test_only_the_gateway_publishes_a_port(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name != "gateway":
            assert not service.get("ports"), f"{name} publishes a port"
    (published,) = services["gateway"]["ports"]
    assert str(published).rsplit(":", 1)[1] == str(GATEWAY_PORT)


# Settings and secrets ------------------------------------------------------------------
def test_every_sikkerby_variable_is_a_setting(compose: dict[str, Any],
                                              services: dict[str, Any]) -> None:
    fields = set(Settings.model_fields)
    names = {name for service in services.values() for name in environment(service)}
    names |= {match["name"] for match in interpolated_names(compose)}
    for name in sorted(n for n in names if n.startswith("SIKKERBY_")):
        field = name.removeprefix("SIKKERBY_").lower()
        assert field in fields, f"{name} is not a field of Settings"


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any],
                                                  services: dict[str, Any]) -> None:
    for service_name, service in services.items():
        for name, value in environment(service).items():
            if not any(marker in name for marker in SECRETISH):
                continue
            if name.endswith("_FILE"):
                # A path; the file comes in as a compose secret.
                assert value.startswith("/run/secrets/"), name
                continue
            matches = list(INTERPOLATION.finditer(value))
            assert matches, f"{service_name}: {name} holds a literal value"
            for match in matches:
                assert match["op"] in (":?", "?"), f"{name}: no default for a secret"
    for secret in compose.get("secrets", {}).values():
        assert set(secret) == {"file"} and secret["file"].startswith("./secrets/")


DATABASE_URL = re.compile(r"postgresql://(\w+):\$\{(\w+):\?[^}]*\}@postgres:5432/(\w+)")


def test_each_database_url_uses_its_own_role(services: dict[str, Any]) -> None:
    """Every process connects as the services' roles; only `migrate` also gets the
    owners' URLs."""
    for service_name in APP_SERVICES:
        env = environment(services[service_name])
        for name in SERVICES:
            url = env[f"SIKKERBY_{name.upper()}_DATABASE_URL"]
            match = DATABASE_URL.fullmatch(url)
            assert match, f"{service_name}: {url}"
            assert match.groups() == (name, f"{name.upper()}_DB_PASSWORD", name)
            migration = env.get(f"SIKKERBY_{name.upper()}_MIGRATION_DATABASE_URL")
            if service_name != "migrate":
                assert migration is None, f"{service_name} gets {name}'s owner URL"
                continue
            match = DATABASE_URL.fullmatch(migration or "")
            assert match, f"migrate: {migration}"
            assert match.groups() == (f"{name}_owner", f"{name.upper()}_DB_OWNER_PASSWORD",
                                      name)


def test_no_service_process_gets_an_owner_password(services: dict[str, Any],
                                                   key_file: Path) -> None:
    owner_passwords = {REAL_ENV[f"{s.upper()}_DB_OWNER_PASSWORD"] for s in SERVICES}
    for name in SERVICES:
        used = {m["name"] for m in interpolated_names(services[name].get("environment", {}))}
        assert not {u for u in used if "OWNER" in u}, f"{name}: {sorted(used)}"
        for variable, value in resolved_environment(services[name], key_file).items():
            assert not any(p in value for p in owner_passwords), f"{name}: {variable}"
            assert "_owner" not in value, f"{name}: {variable} names an owner role"
    # The migration does get them (else it could not migrate).
    migrate = resolved_environment(services["migrate"], key_file)
    assert all(any(p in value for value in migrate.values()) for p in owner_passwords)


def test_the_signing_key_reaches_only_the_gateway(services: dict[str, Any]) -> None:
    path = environment(services["gateway"])["SIKKERBY_SIGNING_KEY_FILE"]
    mounted = [s if isinstance(s, str) else s.get("target", s["source"])
               for s in services["gateway"]["secrets"]]
    assert path in {m if m.startswith("/") else f"/run/secrets/{m}" for m in mounted}
    for name in APP_SERVICES:
        if name != "gateway":
            assert not services[name].get("secrets"), f"{name} gets the signing key"
    for name in DOWNSTREAM:
        env = environment(services[name])
        assert "SIKKERBY_ADMIN_CLIENT_SECRET" not in env, f"{name} gets the admin secret"


def test_migrate_bootstraps_the_clients_the_services_use(services: dict[str, Any]) -> None:
    """`sikkerby migrate` creates the admin and the services' clients, with the very
    secrets the gateway and the services are given."""
    migrate = environment(services["migrate"])
    gateway = environment(services["gateway"])
    for name in ("SIKKERBY_ADMIN_CLIENT_ID", "SIKKERBY_ADMIN_CLIENT_SECRET"):
        assert migrate[name] == gateway[name]
    for name, client_id in SERVICE_CLIENTS.items():
        env = environment(services[name])
        assert env["SIKKERBY_SERVICE_CLIENT_ID"] == client_id
        assert migrate[f"SIKKERBY_{name.upper()}_SERVICE_CLIENT_SECRET"] == env[
            "SIKKERBY_SERVICE_CLIENT_SECRET"]


def test_service_clients(services: dict[str, Any]) -> None:
    for name in SERVICES:
        env = environment(services[name])
        if name in SERVICE_CLIENTS:
            assert env["SIKKERBY_SERVICE_CLIENT_ID"] == SERVICE_CLIENTS[name]
            assert INTERPOLATION.fullmatch(env["SIKKERBY_SERVICE_CLIENT_SECRET"])["name"] == (
                f"{name.upper()}_SERVICE_CLIENT_SECRET")
        else:
            assert "SIKKERBY_SERVICE_CLIENT_SECRET" not in env, name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_every_process_passes_the_production_check(
        name: str, services: dict[str, Any], key_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = resolved_environment(services[name], key_file)
    settings = settings_from(env, monkeypatch)
    assert settings.env == "production"
    for service in ServiceName:
        password = REAL_ENV[f"{service.value.upper()}_DB_PASSWORD"]
        assert settings.database_url(service) == (
            f"postgresql+psycopg://{service.value}:{password}@postgres:5432/{service.value}")
        if name == "migrate":
            owner = REAL_ENV[f"{service.value.upper()}_DB_OWNER_PASSWORD"]
            assert settings.migration_database_url(service) == (
                f"postgresql+psycopg://{service.value}_owner:{owner}@postgres:5432/"
                f"{service.value}")
            assert settings.application_role(service) == service.value
        else:
            assert settings.migration_database_url(service) == settings.database_url(service)
            assert settings.application_role(service) is None
    assert settings.public_gateway_url == f"http://gateway:{GATEWAY_PORT}"
    assert settings.signing_key_path == key_file
    if name == "gateway":
        assert settings.host == ALL_INTERFACES
        assert settings.port == GATEWAY_PORT
        assert settings.admin_client_id == REAL_ENV["SIKKERBY_ADMIN_CLIENT_ID"]


def test_sqlite_is_refused_in_that_environment(services: dict[str, Any], key_file: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    env = resolved_environment(services["gateway"], key_file)
    env["SIKKERBY_CITIZENS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'citizens.db'}"
    with pytest.raises(SettingsError, match="SQLite"):
        settings_from(env, monkeypatch)


def test_the_services_must_not_connect_as_the_owner(
        services: dict[str, Any], key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    migrate = resolved_environment(services["migrate"], key_file)
    env = {**migrate, "SIKKERBY_CITIZENS_DATABASE_URL":
           migrate["SIKKERBY_CITIZENS_MIGRATION_DATABASE_URL"]}
    with pytest.raises(SettingsError, match="citizens: .*same user.*owns nothing"):
        settings_from(env, monkeypatch)
    # Nor may a migration URL point elsewhere than the service's database.
    env = {**migrate, "SIKKERBY_SECURITY_MIGRATION_DATABASE_URL":
           migrate["SIKKERBY_SECURITY_MIGRATION_DATABASE_URL"].replace("/security", "/other")}
    with pytest.raises(SettingsError, match="SECURITY_MIGRATION_DATABASE_URL names another"):
        settings_from(env, monkeypatch)


def test_a_service_process_cannot_migrate_in_production(
        services: dict[str, Any], key_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the owners' URLs, `sikkerby migrate` refuses before connecting."""
    settings = settings_from(resolved_environment(services["activation"], key_file),
                             monkeypatch)
    with pytest.raises(SettingsError, match="ACTIVATION_MIGRATION_DATABASE_URL"):
        upgrade_all(settings)


def test_the_env_example(compose: dict[str, Any], services: dict[str, Any], key_file: Path,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    text = ENV_EXAMPLE.read_text()
    example = read_env_file(ENV_EXAMPLE)
    optional = set(re.findall(r"^#([A-Z][A-Z0-9_]*)=", text, re.M))
    used = {m["name"]: m["op"] for m in interpolated_names(compose)}
    required = {name for name, op in used.items() if op in (":?", "?")}
    assert required == set(example), "the example names exactly the required variables"
    assert set(used) - required <= optional, "optional variables are shown, commented out"
    assert set(REAL_ENV) == required
    # A copied example does not start: its placeholders are refused in production.
    env = {name: interpolate(value, example)
           for name, value in environment(services["gateway"]).items()}
    env["SIKKERBY_SIGNING_KEY_FILE"] = str(key_file)
    with pytest.raises(SettingsError, match="placeholder|real secret"):
        settings_from(env, monkeypatch)


# The database roles ----------------------------------------------------------------------
def test_the_init_script_creates_a_database_and_role_per_service(
        services: dict[str, Any]) -> None:
    text = INIT_SCRIPT.read_text()
    assert INIT_SCRIPT.stat().st_mode & stat.S_IXUSR, "executable, so the image runs it"
    assert re.search(r'CREATE ROLE :"owner" WITH LOGIN PASSWORD :\'owner_password\'', text)
    assert re.search(r'CREATE ROLE :"name" WITH LOGIN PASSWORD :\'password\'', text)
    assert re.search(r'CREATE DATABASE :"name" OWNER :"owner"', text)
    assert re.search(r'REVOKE ALL ON DATABASE :"name" FROM PUBLIC', text)
    assert re.search(r'GRANT CONNECT ON DATABASE :"name" TO :"name";', text)
    postgres = environment(services["postgres"])
    for name in SERVICES:
        assert re.search(rf"^create_service_database {name} {name.upper()}_DB_OWNER_PASSWORD "
                         rf"{name.upper()}_DB_PASSWORD$", text, re.M), name
        for variable in (f"{name.upper()}_DB_OWNER_PASSWORD", f"{name.upper()}_DB_PASSWORD"):
            assert INTERPOLATION.fullmatch(postgres[variable])["name"] == variable
    mounts = [str(v) for v in services["postgres"]["volumes"]]
    assert any(m.startswith("./deploy/postgres/init.sh:/docker-entrypoint-initdb.d/")
               for m in mounts), mounts


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[PostgresCluster]:
    """A cluster of its own: the init script creates cluster-wide roles."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) are not installed here")
    cluster = PostgresCluster(bindir)
    cluster.start()
    yield cluster
    cluster.destroy()


def run_init_script(cluster: PostgresCluster, passwords: Mapping[str, str]
                    ) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{cluster.bindir}{os.pathsep}{os.environ.get('PATH', '')}",
        "POSTGRES_USER": cluster.user, "POSTGRES_DB": "postgres",
        "PGHOST": "127.0.0.1", "PGPORT": str(cluster.port), "PGPASSWORD": cluster.password,
        **passwords,
    }
    return subprocess.run(["bash", str(INIT_SCRIPT)], env=env, capture_output=True,
                          text=True, timeout=120)


def database_passwords(env: Mapping[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items()
            if name.endswith("_DB_PASSWORD") or name.endswith("_DB_OWNER_PASSWORD")}


def test_the_init_script_refuses_placeholder_passwords(own_cluster: PostgresCluster) -> None:
    example = read_env_file(ENV_EXAMPLE)
    result = run_init_script(own_cluster, database_passwords(example))
    assert result.returncode != 0
    assert "GATEWAY_DB_OWNER_PASSWORD" in result.stderr
    # A real owner password does not let a placeholder through for the service's role.
    passwords = {**database_passwords(example),
                 "GATEWAY_DB_OWNER_PASSWORD": REAL_ENV["GATEWAY_DB_OWNER_PASSWORD"]}
    result = run_init_script(own_cluster, passwords)
    assert result.returncode != 0
    assert "GATEWAY_DB_PASSWORD" in result.stderr


def test_the_init_script_refuses_the_owner_password_for_the_service(
        own_cluster: PostgresCluster) -> None:
    passwords = {**database_passwords(REAL_ENV),
                 "GATEWAY_DB_PASSWORD": REAL_ENV["GATEWAY_DB_OWNER_PASSWORD"]}
    result = run_init_script(own_cluster, passwords)
    assert result.returncode != 0
    assert "must differ" in result.stderr




def test_the_init_script_and_migrate_on_postgresql(
        own_cluster: PostgresCluster, services: dict[str, Any], key_file: Path) -> None:
    passwords = database_passwords(REAL_ENV)
    result = run_init_script(own_cluster, passwords)
    assert result.returncode == 0, result.stderr

    def local(value: str) -> str:
        return value.replace("@postgres:5432/", f"@127.0.0.1:{own_cluster.port}/")

    def run_migrate() -> None:
        """`sikkerby migrate` with the migrate service's environment, postgres:5432 made
        local."""
        env = {name: local(value)
               for name, value in resolved_environment(services["migrate"], key_file).items()}
        base = {k: v for k, v in os.environ.items() if not k.upper().startswith("SIKKERBY_")}
        migrate = subprocess.run([sys.executable, "-m", "gateway.cli", "migrate"],
                                 env={**base, **env}, cwd=ROOT, capture_output=True,
                                 text=True, timeout=300)
        assert migrate.returncode == 0, migrate.stdout + migrate.stderr

    def connect(role: str, database: str, **options: Any) -> psycopg.Connection:
        variable = (f"{role.removesuffix('_owner').upper()}_DB_OWNER_PASSWORD"
                    if role.endswith("_owner") else f"{role.upper()}_DB_PASSWORD")
        return psycopg.connect(host="127.0.0.1", port=own_cluster.port, user=role,
                               password=passwords[variable], dbname=database,
                               connect_timeout=10, **options)

    def audit_privileges(name: str) -> set[str]:
        with connect(f"{name}_owner", name) as owner:
            return {row[0] for row in owner.execute(
                "SELECT privilege_type FROM information_schema.role_table_grants "
                "WHERE grantee = %s AND table_name = 'audit_entry'", (name,))}

    run_migrate()
    gateway = resolved_environment(services["gateway"], key_file)
    for name in SERVICES:
        owner = f"{name}_owner"
        with connect(owner, name) as connection:
            assert connection.execute(
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                (name,)).fetchone() == (owner,)
            assert connection.execute("SELECT version_num FROM alembic_version").fetchone(), (
                f"{name} is migrated")
            table_owners = {row[0] for row in connection.execute(
                "SELECT tableowner FROM pg_tables WHERE schemaname = 'public'")}
            assert table_owners == {owner}, f"{name}: {table_owners}"
        assert audit_privileges(name) == {"SELECT", "INSERT"}

        # The service's role reads and writes, through the code the services run...
        app_url = local(gateway[f"SIKKERBY_{name.upper()}_DATABASE_URL"])
        assert f"//{name}:" in app_url
        engine = make_engine(app_url)
        try:
            with new_session(engine) as session:
                append_entries(session, audit_entries(2, actor="c-compose"))
                session.commit()
                assert verify_chain(session) == (True, 2)
        finally:
            engine.dispose()
        with connect(name, name, autocommit=True) as app:
            app.execute("INSERT INTO idempotency_key (client_id, key, request_hash, "
                        "created_at) VALUES ('c-compose', 'k1', %s, now())", ("f" * 64,))
            app.execute("UPDATE idempotency_key SET status_code = 200 WHERE key = 'k1'")
            assert app.execute("SELECT status_code FROM idempotency_key WHERE key = 'k1'"
                               ).fetchone() == (200,)
            app.execute("DELETE FROM idempotency_key WHERE key = 'k1'")
            if name == "gateway":
                # `migrate` created the configured clients as the gateway's role.
                clients = {row[0] for row in app.execute("SELECT client_id FROM api_client")}
                assert {REAL_ENV["SIKKERBY_ADMIN_CLIENT_ID"], *SERVICE_CLIENTS.values()} <= (
                    clients)
        # ...but cannot change or remove an audit entry, nor switch its guard off.
        for statement in REFUSED_ON_THE_AUDIT_LOG:
            with connect(name, name) as app, pytest.raises(
                    psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
        with connect(owner, name) as connection:
            assert connection.execute("SELECT count(*) FROM audit_entry").fetchone() == (2,)
            assert connection.execute(
                "SELECT tgenabled FROM pg_trigger WHERE tgname = 'audit_entry_append_only'"
            ).fetchall() == [("O",)]

        # Neither role reaches another database.
        for role in (name, owner):
            for other in ("postgres", *(s for s in SERVICES if s != name)):
                with pytest.raises(psycopg.OperationalError, match="permission denied"):
                    connect(role, other).close()

    # A second run (a later release's migrations) grants afresh, to the same effect.
    run_migrate()
    for name in SERVICES:
        assert audit_privileges(name) == {"SELECT", "INSERT"}
        with connect(name, name) as app:
            assert app.execute("SELECT count(*) FROM audit_entry").fetchone() == (2,)
