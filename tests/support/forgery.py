"""Tokens made by hand, to prove the verifiers refuse what they must."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jwt


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def segment(obj: dict[str, Any]) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def good_claims(settings: Any, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": settings.issuer, "aud": settings.audience, "sub": "forger",
              "iat": now, "nbf": now, "exp": now + 300, "jti": uuid.uuid4().hex,
              "scope": "providers:read providers:write clients:admin", "role": "admin"}
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def gateway_private_key(key_file: Path) -> tuple[str, str]:
    """(kid, PEM) of the active signing key: for tokens with a valid signature but
    broken claims."""
    records = json.loads(key_file.read_text())["keys"]
    active = [r for r in records if r["retired_at"] is None][-1]
    return active["kid"], active["private_pem"]


def sign_es256(claims: dict[str, Any], pem: str, **header: Any) -> str:
    headers = {"typ": "at+jwt", **header}
    return jwt.encode(claims, jwk.construct(pem, "ES256"), algorithm="ES256", headers=headers)


def sign_hs256_raw(claims: dict[str, Any], secret: bytes, header: dict[str, Any]) -> str:
    signing_input = f"{segment({'alg': 'HS256', **header})}.{segment(claims)}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def unsigned(claims: dict[str, Any], header: dict[str, Any]) -> str:
    return f"{segment({'alg': 'none', **header})}.{segment(claims)}."


def public_key_forms(pem: str) -> tuple[bytes, bytes]:
    """The public key in PEM and in DER form: what an attacker can read from the JWKS."""
    private = serialization.load_pem_private_key(pem.encode(), password=None)
    public = private.public_key()
    return (
        public.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo),
        public.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo),
    )


def attacker_key() -> tuple[str, dict[str, Any]]:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public_jwk = jwk.construct(pem, "ES256").public_key().to_dict()
    return pem, public_jwk


def forged_tokens(settings: Any, key_file: Path) -> dict[str, str]:
    kid, pem = gateway_private_key(key_file)
    claims = good_claims(settings)
    header = {"kid": kid, "typ": "at+jwt"}
    public_pem, public_der = public_key_forms(pem)
    evil_pem, evil_jwk = attacker_key()
    now = int(time.time())
    return {
        "alg_none": unsigned(claims, header),
        "alg_none_no_signature_dot": unsigned(claims, header)[:-1],
        "hs256_with_public_pem": sign_hs256_raw(claims, public_pem, header),
        "hs256_with_public_der": sign_hs256_raw(claims, public_der, header),
        "unknown_kid": sign_es256(claims, pem, kid="no-such-kid"),
        "no_kid": jwt.encode(claims, jwk.construct(pem, "ES256"), algorithm="ES256",
                             headers={"typ": "at+jwt"}),
        "missing_exp": sign_es256(good_claims(settings, exp=None), pem, kid=kid),
        "missing_iss": sign_es256(good_claims(settings, iss=None), pem, kid=kid),
        "missing_aud": sign_es256(good_claims(settings, aud=None), pem, kid=kid),
        "missing_sub": sign_es256(good_claims(settings, sub=None), pem, kid=kid),
        "expired": sign_es256(good_claims(settings, iat=now - 1000, nbf=now - 1000,
                                          exp=now - 100), pem, kid=kid),
        "nbf_in_future": sign_es256(good_claims(settings, nbf=now + 600), pem, kid=kid),
        "wrong_typ": sign_es256(claims, pem, kid=kid, typ="JWT"),
        "no_typ": jwt.encode(claims, jwk.construct(pem, "ES256"), algorithm="ES256",
                             headers={"kid": kid}),
        "wrong_audience": sign_es256(good_claims(settings, aud="someone-else"), pem, kid=kid),
        "wrong_issuer": sign_es256(good_claims(settings, iss="https://evil.example"), pem,
                                   kid=kid),
        "lifetime_over_15_minutes": sign_es256(good_claims(settings, exp=now + 3600), pem,
                                               kid=kid),
        "unknown_role": sign_es256(good_claims(settings, role="superuser"), pem, kid=kid),
        "attacker_key_in_jwk_header": sign_es256(claims, evil_pem, kid=kid, jwk=evil_jwk),
        "attacker_key_via_jku": sign_es256(claims, evil_pem, kid="evil",
                                           jku="https://evil.example/jwks.json"),
        "tampered_payload": _tamper(sign_es256(claims, pem, kid=kid)),
        "jwe_shaped": f"{segment({'alg': 'dir', 'enc': 'A256GCM', 'kid': kid})}.."
                      f"{b64(b'iv')}.{b64(b'ciphertext')}.{b64(b'tag')}",
        "garbage": "not-a-token",
    }


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    claims["sub"] = "someone-else"
    return f"{header}.{segment(claims)}.{signature}"
