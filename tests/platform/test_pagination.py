"""Cursor pagination, through the gateway, on the providers list."""

from __future__ import annotations

from .. import test_gateway
from ..support.system import System, bearer


def test_pages_cover_every_row_once(system: System) -> None:
    token = system.admin_token()
    with system.http() as http:
        for i in range(7):
            created = http.post("/v1/providers", json={"name": f"P{i}", "cvr": f"3000000{i}"},
                                headers=bearer(token))
            assert created.status_code == 201, created.text
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = http.get("/v1/providers", params=params, headers=bearer(token)).json()
            assert len(page["items"]) <= 3
            seen += [p["id"] for p in page["items"]]
            pages += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert pages == 3 and len(seen) == len(set(seen)) == 7


def test_limits_and_bad_cursors_are_422(system: System) -> None:
    token = system.admin_token()
    with system.http() as http:
        for params in ({"limit": 501}, {"limit": 0}, {"limit": "x"}):
            response = http.get("/v1/providers", params=params, headers=bearer(token))
            test_gateway.assert_problem(response, 422, "validation_error")
        for cursor in ("garbage", "WyJ4Il0", "e30"):
            response = http.get("/v1/providers", params={"cursor": cursor},
                                headers=bearer(token))
            test_gateway.assert_problem(response, 422, "invalid_cursor")
        assert http.get("/v1/providers", params={"limit": 500},
                        headers=bearer(token)).status_code == 200
