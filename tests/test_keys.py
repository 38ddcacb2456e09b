import json
from datetime import UTC, datetime, timedelta

from gateway.keys import RETIRED_KEY_GRACE, Keystore, ensure_key_file, rotate_keys


def test_rotation_keeps_old_keys_until_their_tokens_expire(tmp_path) -> None:
    path = tmp_path / "signing.json"
    ensure_key_file(path, allow_generate=True)
    first = Keystore(path).active.kid
    now = datetime.now(UTC)
    second = rotate_keys(path, now)
    store = Keystore(path)
    assert store.active.kid == second
    assert {k["kid"] for k in store.jwks()["keys"]} == {first, second}
    # Once no token signed by the first key can be valid, it is pruned on the next rotation.
    third = rotate_keys(path, now + RETIRED_KEY_GRACE + timedelta(seconds=1))
    kids = [k["kid"] for k in json.loads(path.read_text())["keys"]]
    assert first not in kids and second in kids and third in kids


def test_production_never_generates_a_key(tmp_path) -> None:
    import pytest

    from services.platform.settings import SettingsError

    with pytest.raises(SettingsError):
        ensure_key_file(tmp_path / "missing.json", allow_generate=False)
    assert not (tmp_path / "missing.json").exists()
