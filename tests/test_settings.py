from __future__ import annotations

import pytest
from pydantic import ValidationError

from services.platform.settings import Settings, SettingsError

GOOD = {
    "env": "production",
    "field_encryption_keys": "k1:3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "hash_key": "Vq9ZtTq1bWl3eQ4rXkz8pY2sHn6uJm0c",
    "admin_client_secret": "Zr5kQ8wLp2nV7xT4yB9mC3dF6gH1jK0s",
    "signing_key_file": "/run/secrets/signing.json",
    **{f"{s}_database_url": f"postgresql://{s}:pw@db/{s}"
       for s in ("gateway", "citizens", "providers", "activation", "security")},
}


def test_production_settings_that_are_real_pass() -> None:
    settings = Settings(**GOOD)
    assert settings.database_url("citizens").startswith("postgresql+psycopg://")


@pytest.mark.parametrize(("change", "message"), [
    ({"citizens_database_url": None}, "SQLite"),
    ({"hash_key": None}, "HASH_KEY"),
    ({"hash_key": "change-me-please-now-1234"}, "HASH_KEY"),
    ({"field_encryption_keys": None}, "FIELD_ENCRYPTION_KEYS"),
    ({"field_encryption_keys": "k1:short"}, "placeholder"),
    ({"admin_client_secret": "password"}, "ADMIN_CLIENT_SECRET"),
    ({"signing_key_file": None}, "SIGNING_KEY_FILE"),
])
def test_production_refuses_unsafe_settings(change: dict, message: str) -> None:
    values = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(SettingsError, match=message):
        Settings(**values)


def test_development_defaults_need_nothing() -> None:
    settings = Settings(env="development")
    assert settings.database_url("gateway").startswith("sqlite:///")
    assert settings.port == 8000 and settings.host == "127.0.0.1"


def test_token_lifetime_is_capped_at_15_minutes() -> None:
    with pytest.raises(ValidationError):
        Settings(token_lifetime_seconds=901)


def test_settings_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("SIKKERBY_PORT", "8123")
    monkeypatch.setenv("SIKKERBY_CORS_ORIGINS", '["https://a.kk.dk","https://b.kk.dk"]')
    settings = Settings()
    assert settings.port == 8123
    assert settings.cors_origins == ["https://a.kk.dk", "https://b.kk.dk"]


OWNERS = {f"{s}_migration_database_url": f"postgresql://{s}_owner:pw@db/{s}"
          for s in ("gateway", "citizens", "providers", "activation", "security")}


def test_migration_urls_default_to_the_services_own() -> None:
    settings = Settings(env="development")
    assert settings.migration_database_url("citizens") == settings.database_url("citizens")
    assert settings.application_role("citizens") is None  # SQLite: no roles
    settings = Settings(**GOOD)
    assert settings.migration_database_url("citizens") == settings.database_url("citizens")
    assert settings.application_role("citizens") is None  # no owner given: nothing to grant


def test_the_migration_runs_as_the_owner_and_grants_the_services_role() -> None:
    settings = Settings(**GOOD, **OWNERS)
    assert settings.migration_database_url("citizens") == (
        "postgresql+psycopg://citizens_owner:pw@db/citizens")
    assert settings.application_role("citizens") == "citizens"


@pytest.mark.parametrize(("change", "message"), [
    ({"citizens_migration_database_url": "postgresql://citizens:pw2@db/citizens"},
     "citizens: .*same user"),
    ({"citizens_migration_database_url": "postgresql://citizens_owner:pw@db/providers"},
     "CITIZENS_MIGRATION_DATABASE_URL names another database"),
    ({"citizens_migration_database_url": "postgresql://citizens_owner:pw@elsewhere/citizens"},
     "CITIZENS_MIGRATION_DATABASE_URL names another database"),
    ({"citizens_migration_database_url": "sqlite:///citizens.db"}, "SQLite"),
])
def test_production_refuses_a_service_connecting_as_the_owner(change: dict,
                                                              message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings(**{**GOOD, **OWNERS, **change})


def test_development_may_migrate_as_the_services_own_role() -> None:
    """One role for both (a developer's PostgreSQL): allowed outside production, and
    nothing is granted then."""
    settings = Settings(env="development", citizens_database_url="postgresql://dev:pw@db/c",
                        citizens_migration_database_url="postgresql://dev:pw@db/c")
    assert settings.application_role("citizens") is None
