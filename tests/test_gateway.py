"""The gateway and the token checks, through real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import concurrent.futures
import uuid
from datetime import date

import httpx
import pytest

from gateway.keys import rotate_keys
from services.platform.settings import ServiceName

from .support.builders import make_cpr, register
from .support.forgery import forged_tokens
from .support.system import ADMIN_ID, ADMIN_SECRET, System, bearer

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def assert_problem(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status and body["code"] == code
    return body


def token_request(system: System, **data: str) -> httpx.Response:
    return httpx.post(f"{system.url}/v1/auth/token",
                      data={"grant_type": "client_credentials", **data})


# Token issuance -------------------------------------------------------------------
def test_token_has_the_claims_api_md_names(system: System) -> None:
    from jose import jwt

    response = token_request(system, client_id=ADMIN_ID, client_secret=ADMIN_SECRET)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 900
    header = jwt.get_unverified_header(body["access_token"])
    claims = jwt.get_unverified_claims(body["access_token"])
    assert header["alg"] == "ES256" and header["typ"] == "at+jwt" and header["kid"]
    assert {"iss", "aud", "sub", "exp", "iat", "jti", "scope", "role"} <= claims.keys()
    assert claims["exp"] - claims["iat"] <= 900
    assert claims["sub"] == ADMIN_ID and claims["role"] == "admin"
    assert set(body["scope"].split()) == {"clients:admin", "providers:read", "providers:write"}


def test_wrong_secret_and_unknown_client_are_invalid_client(system: System) -> None:
    for data in ({"client_id": ADMIN_ID, "client_secret": "wrong"},
                 {"client_id": "nobody", "client_secret": "wrong"}):
        response = token_request(system, **data)
        assert response.status_code == 401
        assert response.json()["error"] == "invalid_client"


def test_unsupported_grant_type(system: System) -> None:
    response = httpx.post(f"{system.url}/v1/auth/token",
                          data={"grant_type": "password", "client_id": ADMIN_ID,
                                "client_secret": ADMIN_SECRET})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_scope_narrowing(system: System) -> None:
    client = system.new_client("caseworker")
    narrow = token_request(system, client_id=client["client_id"],
                           client_secret=client["client_secret"], scope="providers:read")
    assert narrow.status_code == 200 and narrow.json()["scope"] == "providers:read"
    token = narrow.json()["access_token"]
    # The narrowed token cannot do what the role could.
    assert_problem(httpx.get(f"{system.url}/v1/citizens", headers=bearer(token)),
                   403, "insufficient_scope")
    for scope in ("clients:admin", "providers:read threats:read", "no-such-scope"):
        outside = token_request(system, client_id=client["client_id"],
                                client_secret=client["client_secret"], scope=scope)
        assert outside.status_code == 400
        assert outside.json()["error"] == "invalid_scope"


def test_client_roles_get_their_scopes_and_provider_binding(system: System) -> None:
    provider_id = str(uuid.uuid4())
    client = system.new_client("provider", provider_id=provider_id)
    assert client["role"] == "provider"
    assert "attendance:write" in client["scopes"] and "citizens:read" not in client["scopes"]
    from jose import jwt

    token = system.token(client["client_id"], client["client_secret"])
    assert jwt.get_unverified_claims(token)["provider_id"] == provider_id
    with system.http() as http:
        admin = bearer(system.admin_token())
        missing = http.post("/v1/admin/clients", json={"name": "p", "role": "provider"},
                            headers=admin)
        assert_problem(missing, 422, "validation_error")
        service = http.post("/v1/admin/clients", json={"name": "s", "role": "service"},
                            headers=admin)
        assert_problem(service, 422, "validation_error")
        listed = http.get("/v1/admin/clients", params={"limit": 500}, headers=admin).json()
        ids = [c["client_id"] for c in listed["items"]]
        assert client["client_id"] in ids
        assert all("secret" not in key for c in listed["items"] for key in c)


def test_a_client_created_with_scopes_holds_only_those(system: System) -> None:
    """Deny by default: a caseworker client made for reading citizens holds that scope,
    not the rest of its role's, and its tokens carry no more."""
    from jose import jwt

    client = system.new_client("caseworker", scopes=["citizens:read"])
    assert client["role"] == "caseworker" and client["scopes"] == ["citizens:read"]
    issued = token_request(system, client_id=client["client_id"],
                           client_secret=client["client_secret"])
    assert issued.status_code == 200, issued.text
    assert issued.json()["scope"] == "citizens:read"
    token = issued.json()["access_token"]
    assert jwt.get_unverified_claims(token)["scope"] == "citizens:read"
    with system.http() as http:
        assert http.get("/v1/citizens", headers=bearer(token)).status_code == 200
        # The role's other scopes are not the client's.
        register = http.post("/v1/citizens", headers=bearer(token), json={
            "cpr": make_cpr(date(1990, 1, 1)), "name": "X", "benefit": "kontanthjaelp",
            "readiness": "jobparat"})
        assert_problem(register, 403, "insufficient_scope")
        assert_problem(http.get("/v1/providers", headers=bearer(token)), 403,
                       "insufficient_scope")
        listed = http.get("/v1/admin/clients", params={"limit": 500},
                          headers=bearer(system.admin_token())).json()["items"]
        assert next(c for c in listed if c["client_id"] == client["client_id"])[
            "scopes"] == ["citizens:read"]
    for scope in ("citizens:write", "citizens:read citizens:write"):
        outside = token_request(system, client_id=client["client_id"],
                                client_secret=client["client_secret"], scope=scope)
        assert outside.status_code == 400 and outside.json()["error"] == "invalid_scope"
    # Two of the role's scopes, and without `scopes` the role's whole set as before.
    lead = system.new_client("team_lead", scopes=["reports:read", "citizens:read"])
    assert lead["scopes"] == ["citizens:read", "reports:read"]
    assert set(system.new_client("team_lead")["scopes"]) > {"citizens:read", "reports:read"}


@pytest.mark.parametrize(("role", "scopes", "where"), [
    ("caseworker", ["citizens:read", "threats:read"], ["body", "scopes", "1"]),
    ("caseworker", ["clients:admin"], ["body", "scopes", "0"]),
    ("analyst", ["citizens:read"], ["body", "scopes", "0"]),
    ("police", ["threats:read"], ["body", "scopes", "0"]),
    ("admin", ["audit:read"], ["body", "scopes", "0"]),
    ("service", ["citizens:read"], ["body", "scopes", "0"]),  # a human role's
    ("caseworker", [], ["body", "scopes"]),
    ("service", [], ["body", "scopes"]),
    ("service", None, ["body", "scopes"]),
])
def test_a_scope_outside_the_role_is_422_and_makes_no_client(
        system: System, role: str, scopes: list[str] | None, where: list[str]) -> None:
    admin = bearer(system.admin_token())
    body = {"name": "narrow", "role": role, **({"scopes": scopes} if scopes is not None else {})}
    with system.http() as http:
        before = http.get("/v1/admin/clients", params={"limit": 500}, headers=admin).json()
        problem = assert_problem(http.post("/v1/admin/clients", json=body, headers=admin),
                                 422, "validation_error")
        assert where in [error["loc"] for error in problem["errors"]]
        after = http.get("/v1/admin/clients", params={"limit": 500}, headers=admin).json()
    assert after["items"] == before["items"]


def test_admin_routes_need_the_admin_scope(system: System) -> None:
    token = system.token_for("caseworker")
    response = httpx.get(f"{system.url}/v1/admin/clients", headers=bearer(token))
    assert_problem(response, 403, "insufficient_scope")
    assert_problem(httpx.get(f"{system.url}/v1/admin/clients"), 401, "unauthorized")


# Forged and broken tokens ---------------------------------------------------------
@pytest.fixture(scope="module")
def forgeries(system: System) -> dict[str, str]:
    return forged_tokens(system.settings, system.settings.signing_key_path)


@pytest.mark.parametrize("name", [
    "alg_none", "alg_none_no_signature_dot", "hs256_with_public_pem", "hs256_with_public_der",
    "unknown_kid", "no_kid", "missing_exp", "missing_iss", "missing_aud", "missing_sub",
    "expired", "nbf_in_future", "wrong_typ", "no_typ", "wrong_audience", "wrong_issuer",
    "lifetime_over_15_minutes", "unknown_role", "attacker_key_in_jwk_header",
    "attacker_key_via_jku", "tampered_payload", "jwe_shaped", "garbage",
])
def test_forged_token_is_refused_by_gateway_and_by_service(
    system: System, forgeries: dict[str, str], name: str
) -> None:
    token = forgeries[name]
    headers = bearer(token)
    # Through the gateway: a proxied route and one of the gateway's own.
    assert_problem(httpx.get(f"{system.url}/v1/providers", headers=headers), 401,
                   "unauthorized")
    assert_problem(httpx.get(f"{system.url}/v1/admin/clients", headers=headers), 401,
                   "unauthorized")
    # Straight at the service, bypassing the gateway.
    direct = system.servers[ServiceName.providers].url
    assert_problem(httpx.get(f"{direct}/v1/providers", headers=headers), 401, "unauthorized")


def test_a_validly_signed_token_passes_the_same_checks(system: System) -> None:
    """The forgeries above differ from this one in one respect each: so their refusals
    are for that respect, not for something the forging broke by accident."""
    from .support.forgery import gateway_private_key, good_claims, sign_es256

    kid, pem = gateway_private_key(system.settings.signing_key_path)
    token = sign_es256(good_claims(system.settings, sub=ADMIN_ID), pem, kid=kid)
    response = httpx.get(f"{system.url}/v1/providers", headers=bearer(token))
    assert response.status_code == 200, response.text


def test_bearer_scheme_is_required(system: System) -> None:
    token = system.admin_token()
    for value in (f"Basic {token}", token, "Bearer", f"Token {token}"):
        response = httpx.get(f"{system.url}/v1/providers", headers={"Authorization": value})
        assert_problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"].startswith("Bearer")


# Revocation -----------------------------------------------------------------------
def test_revocation_takes_effect_at_once(system: System) -> None:
    client = system.new_client("admin")
    token = system.token(client["client_id"], client["client_secret"])
    with system.http() as http:
        assert http.get("/v1/providers", headers=bearer(token)).status_code == 200
        assert http.get("/v1/admin/clients", headers=bearer(token)).status_code == 200
        revoked = http.delete(f"/v1/admin/clients/{client['client_id']}",
                              headers=bearer(system.admin_token()))
        assert revoked.status_code == 204
        assert_problem(http.get("/v1/providers", headers=bearer(token)), 401, "unauthorized")
        assert_problem(http.get("/v1/admin/clients", headers=bearer(token)), 401,
                       "unauthorized")
    again = token_request(system, client_id=client["client_id"],
                          client_secret=client["client_secret"])
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    missing = httpx.delete(f"{system.url}/v1/admin/clients/no-such-client",
                           headers=bearer(system.admin_token()))
    assert_problem(missing, 404, "not_found")


# Conventions ----------------------------------------------------------------------
def test_unknown_route_is_a_404_problem(system: System) -> None:
    token = system.admin_token()
    for path in ("/v1/nothing-here", "/v1/providersX", "/nothing", "/v1"):
        assert_problem(httpx.get(f"{system.url}{path}", headers=bearer(token)), 404,
                       "not_found")


def test_request_id_is_echoed_or_made(system: System) -> None:
    token = system.admin_token()
    with system.http() as http:
        echoed = http.get("/v1/providers", headers={**bearer(token), "X-Request-ID": "abc-123"})
        assert echoed.headers["x-request-id"] == "abc-123"
        made = http.get("/v1/providers", headers=bearer(token))
        assert len(made.headers["x-request-id"]) >= 16
        bad = http.get("/v1/providers", headers={**bearer(token), "X-Request-ID": "x" * 500})
        assert bad.headers["x-request-id"] != "x" * 500
        # Errors and the gateway's own routes carry one too.
        assert http.get("/v1/nope").headers["x-request-id"]
        assert http.get("/healthz").headers["x-request-id"]


def test_request_id_reaches_the_service(system: System) -> None:
    """The service answers with the id the gateway gave it: one id across the hops."""
    token = system.admin_token()
    response = httpx.post(f"{system.url}/v1/providers", json={"name": "x", "cvr": "0123"},
                          headers={**bearer(token), "X-Request-ID": "trace-me-1"})
    assert_problem(response, 422, "validation_error")
    assert response.headers["x-request-id"] == "trace-me-1"


def test_body_over_the_limit_is_413(system: System) -> None:
    token = system.admin_token()
    big = b'{"name": "' + b"x" * (system.settings.max_body_bytes + 10) + b'"}'
    response = httpx.post(f"{system.url}/v1/providers", content=big,
                          headers={**bearer(token), "content-type": "application/json"})
    assert_problem(response, 413, "payload_too_large")

    def chunked():  # no Content-Length: the limit is counted on the stream
        for _ in range(system.settings.max_body_bytes // 65536 + 2):
            yield b"x" * 65536

    response = httpx.post(f"{system.url}/v1/providers", content=chunked(),
                          headers={**bearer(token), "content-type": "application/json"})
    assert_problem(response, 413, "payload_too_large")


def test_validation_errors_do_not_echo_input(system: System) -> None:
    token = system.admin_token()
    response = httpx.post(f"{system.url}/v1/providers",
                          json={"name": "x", "cvr": "010190-1234"}, headers=bearer(token))
    body = assert_problem(response, 422, "validation_error")
    assert body["errors"] and body["errors"][0]["loc"] == ["body", "cvr"]
    assert "010190" not in response.text


def test_personal_data_routes_are_not_cached(system: System) -> None:
    response = httpx.get(f"{system.url}/v1/providers", headers=bearer(system.admin_token()))
    assert response.headers["cache-control"] == "no-store"


def test_identity_headers_cannot_replace_a_token(system: System) -> None:
    spoofed = {"X-Client-Id": ADMIN_ID, "X-Role": "admin", "X-Scopes": "providers:read"}
    direct = system.servers[ServiceName.providers].url
    assert_problem(httpx.get(f"{direct}/v1/providers", headers=spoofed), 401, "unauthorized")
    # Even beside a valid token, a service refuses a request that carries them...
    token = system.admin_token()
    assert_problem(httpx.get(f"{direct}/v1/providers", headers={**spoofed, **bearer(token)}),
                   401, "unauthorized")
    # ...while the gateway strips them, so honest clients behind odd proxies still work.
    through = httpx.get(f"{system.url}/v1/providers", headers={**spoofed, **bearer(token)})
    assert through.status_code == 200
    assert_problem(httpx.get(f"{system.url}/v1/providers", headers=spoofed), 401,
                   "unauthorized")


def test_service_accepts_a_good_token_directly(system: System) -> None:
    """The bypass refusals above are for the missing token, not for the direct call."""
    direct = system.servers[ServiceName.providers].url
    response = httpx.get(f"{direct}/v1/providers", headers=bearer(system.admin_token()))
    assert response.status_code == 200


def test_jwks_publishes_only_public_keys(system: System) -> None:
    keys = httpx.get(f"{system.url}/.well-known/jwks.json").json()["keys"]
    assert keys and all(k["kty"] == "EC" and k["alg"] == "ES256" and "d" not in k
                        for k in keys)


def test_health_and_readiness(system: System) -> None:
    assert httpx.get(f"{system.url}/healthz").status_code == 200
    ready = httpx.get(f"{system.url}/readyz")
    assert ready.status_code == 200
    assert set(ready.json()["services"]) == {"gateway-database", "citizens", "providers",
                                             "activation", "security"}


def test_merged_openapi_shows_every_service_and_the_scopes(system: System) -> None:
    document = httpx.get(f"{system.url}/openapi.json").json()
    paths = document["paths"]
    for path in ("/v1/auth/token", "/v1/admin/clients", "/v1/providers",
                 "/v1/providers/{provider_id}"):
        assert path in paths
    scheme = document["components"]["securitySchemes"]["ClientCredentials"]
    flow = scheme["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == "/v1/auth/token" and "providers:read" in flow["scopes"]
    assert paths["/v1/providers"]["get"]["security"] == [
        {"ClientCredentials": ["providers:read"]}]
    docs = httpx.get(f"{system.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_no_pattern_in_the_document_says_backslash_d(system: System) -> None:
    """A document's `\\d` is [0-9] (ECMA-262); the service's check with the same pattern
    (Python's or pydantic's regex) takes any script's digits too, e.g. a week written in
    Arabic-Indic digits. Patterns spell ASCII digits out."""
    document = httpx.get(f"{system.url}/openapi.json").json()
    found = []

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "pattern" and isinstance(value, str) and "\\d" in value:
                    found.append(f"{where}: {value}")
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}/{index}")

    walk(document, "")
    assert not found, found


# Routes that take either of two scopes: one requirement object per alternative (an
# object with both would mean a token needs both).
EITHER_SCOPE = {
    ("/v1/citizens/lookup", "post"): ["citizens:read", "citizens:resolve"],
    ("/v1/citizens/{citizen_id}/eligibility", "get"): ["citizens:read", "citizens:status"],
    ("/v1/citizens/enrolled-during", "get"): ["citizens:read", "citizens:status"],
    ("/v1/contracts/{contract_id}", "get"): ["contracts:terms", "providers:read"],
    ("/v1/constraints/{citizen_id}", "get"): ["constraints:read", "security:check"],
    ("/v1/placements", "get"): ["activation:read", "placements:status"],
}


def test_routes_taking_either_scope_document_each_as_an_alternative(system: System) -> None:
    paths = httpx.get(f"{system.url}/openapi.json").json()["paths"]
    for (path, method), scopes in EITHER_SCOPE.items():
        assert paths[path][method]["security"] == [
            {"ClientCredentials": [scope]} for scope in scopes], path
    # No operation asks for two scopes at once: each route takes any one of its scopes.
    together = [f"{method.upper()} {path}" for path, item in paths.items()
                for method, operation in item.items()
                for requirement in operation.get("security", [])
                for scopes in requirement.values() if len(scopes) > 1]
    assert not together, together


def test_a_token_with_one_of_the_alternatives_is_let_in(system: System) -> None:
    """The same routes, called with a token holding only one of their scopes."""
    with system.http() as http:
        caseworker = bearer(system.token_for("caseworker"))
        citizen = register(http, caseworker)
        read_only = bearer(system.token_for("caseworker", scopes=["citizens:read"]))
        resolve_only = bearer(system.token_for("service", scopes=["citizens:resolve"]))
        for headers in (read_only, resolve_only):
            found = http.post("/v1/citizens/lookup", headers=headers,
                              json={"cpr": citizen["cpr"]})
            assert found.status_code == 200 and found.json() == {"id": citizen["id"]}
        measures_only = bearer(system.token_for("caseworker", scopes=["constraints:read"]))
        check_only = bearer(system.token_for("service", scopes=["security:check"]))
        for headers in (measures_only, check_only):
            constraints = http.get(f"/v1/constraints/{citizen['id']}", headers=headers)
            assert constraints.status_code == 200, constraints.text
        # Neither alternative: refused.
        assert_problem(http.post("/v1/citizens/lookup", headers=measures_only,
                                 json={"cpr": citizen["cpr"]}), 403, "insufficient_scope")
        assert_problem(http.get(f"/v1/constraints/{citizen['id']}", headers=read_only),
                       403, "insufficient_scope")


# Key rotation -----------------------------------------------------------------------
def test_key_rotation_without_a_failed_request(system: System) -> None:
    key_file = system.settings.signing_key_path
    old_token = system.admin_token()
    failures: list[int] = []

    def hammer(n: int) -> None:
        with system.http() as http:
            for _ in range(n):
                token = system.admin_token() if _ % 5 == 0 else old_token
                status = http.get("/v1/providers", headers=bearer(token)).status_code
                if status != 200:
                    failures.append(status)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(hammer, 25) for _ in range(3)]
        new_kid = rotate_keys(key_file)
        futures.append(pool.submit(hammer, 25))
        for future in futures:
            future.result()
    assert failures == []
    new_token = system.admin_token()
    from jose import jwt

    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    kids = {k["kid"] for k in httpx.get(f"{system.url}/.well-known/jwks.json").json()["keys"]}
    assert new_kid in kids and jwt.get_unverified_header(old_token)["kid"] in kids
    # Both the old and the new token work, at the gateway and at the service.
    direct = system.servers[ServiceName.providers].url
    for token in (old_token, new_token):
        assert httpx.get(f"{system.url}/v1/providers", headers=bearer(token)).status_code == 200
        assert httpx.get(f"{direct}/v1/providers", headers=bearer(token)).status_code == 200
