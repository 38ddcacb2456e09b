"""Typed settings for every process, read from `SIKKERBY_*` environment variables.

Development (the default) may generate its own keys and use SQLite. Production refuses
to start with SQLite, generated keys or placeholder secrets: see `check_production`.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

MAX_TOKEN_LIFETIME_SECONDS = 15 * 60

# Values that people paste from examples. Refused as secrets in production.
PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "placeholder", "example",
                       "password")


class ServiceName(StrEnum):
    gateway = "gateway"
    citizens = "citizens"
    providers = "providers"
    activation = "activation"
    security = "security"


DOWNSTREAM_SERVICES = (
    ServiceName.citizens,
    ServiceName.providers,
    ServiceName.activation,
    ServiceName.security,
)
DEFAULT_SERVICE_PORTS = {
    ServiceName.citizens: 8101,
    ServiceName.providers: 8102,
    ServiceName.activation: 8103,
    ServiceName.security: 8104,
}


class SettingsError(RuntimeError):
    """The configuration is unsafe or incomplete; the process must not start."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIKKERBY_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("data")

    # Where the gateway listens, and where services reach it (JWKS, service-to-service).
    host: str = "127.0.0.1"
    port: int = 8000
    gateway_url: str | None = None

    # Where the gateway forwards to. One URL per service.
    citizens_url: str = f"http://127.0.0.1:{DEFAULT_SERVICE_PORTS[ServiceName.citizens]}"
    providers_url: str = f"http://127.0.0.1:{DEFAULT_SERVICE_PORTS[ServiceName.providers]}"
    activation_url: str = f"http://127.0.0.1:{DEFAULT_SERVICE_PORTS[ServiceName.activation]}"
    security_url: str = f"http://127.0.0.1:{DEFAULT_SERVICE_PORTS[ServiceName.security]}"

    # One database per service; unset means an SQLite file under data_dir.
    gateway_database_url: str | None = None
    citizens_database_url: str | None = None
    providers_database_url: str | None = None
    activation_database_url: str | None = None
    security_database_url: str | None = None
    # The same databases as the role that owns them, for `sikkerby migrate` only: in
    # production the services connect as roles that own nothing (the URLs above), and
    # after every migration the owner grants such a role what it needs
    # (`application_role`). Unset means the URLs above (development, SQLite).
    gateway_migration_database_url: str | None = None
    citizens_migration_database_url: str | None = None
    providers_migration_database_url: str | None = None
    activation_migration_database_url: str | None = None
    security_migration_database_url: str | None = None
    sqlite_busy_timeout_ms: int = 10_000

    # Tokens.
    issuer: str = "sikkerby"
    audience: str = "sikkerby-api"
    token_lifetime_seconds: int = Field(default=600, ge=30, le=MAX_TOKEN_LIFETIME_SECONDS)
    token_leeway_seconds: int = Field(default=5, ge=0, le=60)
    signing_key_file: Path | None = None  # default: data_dir/keys/signing.json
    jwks_refresh_min_interval_seconds: float = 2.0
    revocation_cache_seconds: float = 1.0

    # Field encryption ("kid:base64key,kid:base64key") and the keyed hash for lookups.
    field_encryption_keys: SecretStr | None = None
    field_encryption_active_key: str | None = None
    hash_key: SecretStr | None = None

    # Bootstrap admin client, and this service's own client for calls to other services.
    admin_client_id: str | None = None
    admin_client_secret: SecretStr | None = None
    service_client_id: str | None = None
    service_client_secret: SecretStr | None = None
    # For the gateway's bootstrap (`sikkerby migrate`): the services' clients' secrets.
    # Unset in the embedded default, where `sikkerby up` makes new ones at every start.
    activation_service_client_secret: SecretStr | None = None
    security_service_client_secret: SecretStr | None = None
    citizens_service_client_secret: SecretStr | None = None

    # Limits.
    rate_limit_per_minute: int = Field(default=1200, ge=1)
    rate_limit_burst: int = Field(default=200, ge=1)
    token_rate_limit_per_minute: int = Field(default=30, ge=1)
    # Reading or verifying the whole audit trail asks every service and can stream every
    # chain: an auditor's client gets far fewer of those calls than ordinary requests.
    audit_rate_limit_per_minute: int = Field(default=60, ge=1)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    upstream_timeout_seconds: float = Field(default=10.0, gt=0)
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    gateway_forwarder: Literal["aiohttp", "httpx"] = "aiohttp"

    cors_origins: list[str] = Field(default_factory=list)

    # The activation budget per year, in øre (15,000,000 DKK, the 2021-24 proposal).
    activation_budget_ore: int = Field(default=1_500_000_000, ge=0)

    # How long audit entries are kept (`sikkerby retention run`): five years by default.
    audit_retention_years: int = Field(default=5, ge=1, le=100)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @model_validator(mode="after")
    def _check_production(self) -> Settings:
        if self.env == "production":
            check_production(self)
        return self

    # Derived values --------------------------------------------------------------
    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"

    @property
    def signing_key_path(self) -> Path:
        return self.signing_key_file or self.keys_dir / "signing.json"

    @property
    def public_gateway_url(self) -> str:
        return self.gateway_url or f"http://{self.host}:{self.port}"

    def database_url(self, service: ServiceName | str) -> str:
        service = ServiceName(service)
        url = getattr(self, f"{service.value}_database_url")
        if url:
            return normalise_database_url(url)
        return f"sqlite:///{(self.data_dir / f'{service.value}.db').resolve()}"

    def migration_database_url(self, service: ServiceName | str) -> str:
        """Where `sikkerby migrate` connects: the owner's URL when given, else the
        service's own."""
        service = ServiceName(service)
        url = getattr(self, f"{service.value}_migration_database_url")
        return normalise_database_url(url) if url else self.database_url(service)

    def application_role(self, service: ServiceName | str) -> str | None:
        """The PostgreSQL role the service connects as (its URL's user), when another
        role migrates its database; None on SQLite, without a migration URL, or when both
        URLs name the same user (which production refuses)."""
        service = ServiceName(service)
        if not getattr(self, f"{service.value}_migration_database_url"):
            return None
        app = make_url(self.database_url(service))
        owner = make_url(self.migration_database_url(service))
        if app.get_backend_name() != "postgresql" or app.username == owner.username:
            return None
        return app.username

    def service_url(self, service: ServiceName | str) -> str:
        return getattr(self, f"{ServiceName(service).value}_url").rstrip("/")


def normalise_database_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever the URL's scheme says."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_placeholder(value: str | None) -> bool:
    if not value or len(value) < 16:
        return True
    lowered = value.lower()
    return any(marker in lowered for marker in PLACEHOLDER_MARKERS)


def check_production(settings: Settings) -> None:
    problems: list[str] = []
    for service in ServiceName:
        if settings.database_url(service).startswith("sqlite"):
            problems.append(f"{service.value}: SQLite is not allowed in production")
    for service in ServiceName:
        problems += _migration_url_problems(settings, service)
    if settings.field_encryption_keys is None:
        problems.append("SIKKERBY_FIELD_ENCRYPTION_KEYS must be set")
    else:
        for entry in settings.field_encryption_keys.get_secret_value().split(","):
            _, _, key = entry.partition(":")
            if is_placeholder(key):
                problems.append("SIKKERBY_FIELD_ENCRYPTION_KEYS holds a placeholder key")
    if settings.hash_key is None or is_placeholder(settings.hash_key.get_secret_value()):
        problems.append("SIKKERBY_HASH_KEY must be a real secret")
    if settings.admin_client_secret is not None and is_placeholder(
        settings.admin_client_secret.get_secret_value()
    ):
        problems.append("SIKKERBY_ADMIN_CLIENT_SECRET is a placeholder")
    for name in ("service_client_secret", "activation_service_client_secret",
                 "security_service_client_secret", "citizens_service_client_secret"):
        value = getattr(settings, name)
        if value is not None and is_placeholder(value.get_secret_value()):
            problems.append(f"SIKKERBY_{name.upper()} is a placeholder")
    if settings.signing_key_file is None:
        problems.append("SIKKERBY_SIGNING_KEY_FILE must name a provisioned key file")
    if problems:
        raise SettingsError("refusing to start in production: " + "; ".join(problems))


def _migration_url_problems(settings: Settings, service: ServiceName) -> list[str]:
    """A migration URL, where one is given (the migrate step's environment), must name
    the service's database as another user than the service's own URL: the service must
    not connect as the role that owns its tables."""
    if not getattr(settings, f"{service.value}_migration_database_url"):
        return []
    name = f"SIKKERBY_{service.value.upper()}_MIGRATION_DATABASE_URL"
    try:
        app = make_url(settings.database_url(service))
        owner = make_url(settings.migration_database_url(service))
    except ArgumentError:
        return [f"{name} or SIKKERBY_{service.value.upper()}_DATABASE_URL is not a "
                "database URL"]
    if owner.get_backend_name() == "sqlite":
        return [f"{name}: SQLite is not allowed in production"]
    if (owner.host, owner.port, owner.database) != (app.host, app.port, app.database):
        return [f"{name} names another database than SIKKERBY_{service.value.upper()}"
                "_DATABASE_URL"]
    if owner.username == app.username:
        return [f"{service.value}: the service's database URL names the same user as {name};"
                " the service must connect as a role that owns nothing"]
    return []


def check_migration(settings: Settings, command: str = "migrate") -> None:
    """`sikkerby migrate` (and `retention run`, which cuts the audit chains) in production
    runs as each database's owner, which only the migrate step is given: without the
    owners' URLs it would run as the services' roles, which may create nothing and may
    not cut an audit chain."""
    if settings.env != "production":
        return
    missing = [f"SIKKERBY_{service.value.upper()}_MIGRATION_DATABASE_URL"
               for service in ServiceName
               if not getattr(settings, f"{service.value}_migration_database_url")]
    if missing:
        raise SettingsError(f"refusing to {command} in production without the owners' "
                            "database URLs: set " + ", ".join(missing))


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
