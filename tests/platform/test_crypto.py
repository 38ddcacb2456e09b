import logging
import os

import pytest

from services.platform.crypto import (
    DecryptionError,
    FieldCipher,
    KeyedHasher,
    ensure_dev_secrets,
    parse_field_keys,
)
from services.platform.middleware import RedactingFilter
from services.platform.settings import Settings, SettingsError


def test_round_trip_and_key_rotation() -> None:
    old = FieldCipher({"k1": os.urandom(32)}, "k1")
    stored = old.encrypt("0101901234", context="citizen.cpr")
    assert stored.startswith("k1:") and "0101901234" not in stored
    assert old.decrypt(stored, context="citizen.cpr") == "0101901234"
    keys = {"k1": os.urandom(32), "k2": os.urandom(32)}
    first = FieldCipher({"k1": keys["k1"]}, "k1")
    value = first.encrypt("secret note", context="note")
    second = FieldCipher(keys, "k2")  # k2 now active, k1 still known
    assert second.decrypt(value, context="note") == "secret note"
    assert second.encrypt("x", context="note").startswith("k2:")


def test_same_plaintext_encrypts_differently() -> None:
    cipher = FieldCipher({"k1": os.urandom(32)}, "k1")
    assert cipher.encrypt("a", context="c") != cipher.encrypt("a", context="c")


@pytest.mark.parametrize("mutate", ["flip", "context", "unknown_kid"])
def test_tampering_is_detected(mutate: str) -> None:
    cipher = FieldCipher({"k1": os.urandom(32)}, "k1")
    stored = cipher.encrypt("0101901234", context="citizen.cpr")
    context = "citizen.cpr"
    if mutate == "flip":
        kid, payload = stored.split(":")
        stored = f"{kid}:{payload[:-2]}{'A' if payload[-2] != 'A' else 'B'}{payload[-1]}"
    elif mutate == "context":
        context = "threat.note"
    else:
        stored = "k9:" + stored.split(":")[1]
    with pytest.raises(DecryptionError):
        cipher.decrypt(stored, context=context)


def test_keys_are_checked() -> None:
    with pytest.raises(SettingsError):
        FieldCipher({"k1": b"short"}, "k1")
    with pytest.raises(SettingsError):
        FieldCipher({"k1": os.urandom(32)}, "k2")
    with pytest.raises(SettingsError):
        KeyedHasher(b"short")
    with pytest.raises(SettingsError):
        parse_field_keys("no-colon")


def test_keyed_hash_is_stable_keyed_and_purpose_bound() -> None:
    key = os.urandom(32)
    hasher = KeyedHasher(key)
    assert hasher.hash("0101901234", purpose="cpr") == KeyedHasher(key).hash(
        "0101901234", purpose="cpr")
    assert hasher.hash("0101901234", purpose="cpr") != KeyedHasher(os.urandom(32)).hash(
        "0101901234", purpose="cpr")
    assert hasher.hash("0101901234", purpose="cpr") != hasher.hash("0101901234", purpose="x")


def test_dev_secrets_are_made_once_and_refused_in_production(tmp_path) -> None:
    settings = Settings(env="development", data_dir=tmp_path)
    first = ensure_dev_secrets(settings)
    assert ensure_dev_secrets(settings) == first
    assert (tmp_path / "keys" / "secrets.json").stat().st_mode & 0o077 == 0
    keys = parse_field_keys(first["SIKKERBY_FIELD_ENCRYPTION_KEYS"])
    FieldCipher(keys, first["SIKKERBY_FIELD_ENCRYPTION_ACTIVE_KEY"])


def test_log_filter_redacts_cpr_like_numbers(caplog) -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "cpr %s and %s",
                               ("010190-1234", "0101901234"), None)
    RedactingFilter().filter(record)
    assert "1234" not in record.getMessage() and "[redacted]" in record.getMessage()
