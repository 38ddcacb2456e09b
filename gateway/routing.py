"""The route table: which service owns a path, and the coarse scope check.

A caller must hold at least one of a route's scopes to pass the gateway; the service then
checks the exact scope of the operation and the object. A path no entry matches is 404
at the gateway and never reaches a service.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.platform.scopes import Scope
from services.platform.settings import ServiceName

S = Scope


@dataclass(frozen=True)
class Route:
    prefix: str
    service: ServiceName
    scopes: frozenset[Scope]


def _route(prefix: str, service: ServiceName, *scopes: Scope) -> Route:
    return Route(prefix, service, frozenset(scopes))


ACTIVATION_READERS = (S.activation_read, S.activation_write)

ROUTES: tuple[Route, ...] = (
    # citizens
    _route("/v1/citizens", ServiceName.citizens, S.citizens_read, S.citizens_write,
           S.citizens_status, S.citizens_resolve, S.citizens_export),
    _route("/v1/reports/enrolment", ServiceName.citizens, S.reports_read),
    # providers
    _route("/v1/providers", ServiceName.providers, S.providers_read, S.providers_write),
    _route("/v1/contracts", ServiceName.providers, S.providers_read, S.providers_write,
           S.contracts_terms),
    # activation
    _route("/v1/hours-caps", ServiceName.activation, *ACTIVATION_READERS),
    _route("/v1/cohorts", ServiceName.activation, *ACTIVATION_READERS),
    _route("/v1/placements", ServiceName.activation, *ACTIVATION_READERS, S.placements_status),
    _route("/v1/attendance", ServiceName.activation, S.attendance_read, S.attendance_write),
    _route("/v1/sanction-cases", ServiceName.activation, S.sanctions_read, S.sanctions_write,
           S.sanctions_decide),
    _route("/v1/conversations", ServiceName.activation, S.sanctions_read, S.sanctions_write),
    _route("/v1/rights-guidance", ServiceName.activation, S.sanctions_read, S.sanctions_write),
    _route("/v1/activation-records", ServiceName.activation, S.activation_export),
    _route("/v1/reports/activation", ServiceName.activation, S.reports_read),
    _route("/v1/reports/spending", ServiceName.activation, S.reports_read),
    _route("/v1/reports/sanctions", ServiceName.activation, S.reports_read),
    # security
    _route("/v1/threat-assessments", ServiceName.security, S.threats_write, S.threats_read),
    _route("/v1/conflicts", ServiceName.security, S.threats_write, S.threats_read),
    _route("/v1/constraints", ServiceName.security, S.constraints_read, S.security_check),
    _route("/v1/group-checks", ServiceName.security, S.security_check),
    _route("/v1/referrals", ServiceName.security, S.referrals_read, S.threats_link),
)


class RouteTable:
    def __init__(self, routes: tuple[Route, ...] = ROUTES) -> None:
        # Longest prefix first, so /v1/reports/enrolment never falls to a shorter entry.
        self._routes = sorted(routes, key=lambda r: len(r.prefix), reverse=True)

    def match(self, path: str) -> Route | None:
        for route in self._routes:
            if path == route.prefix or path.startswith(route.prefix + "/"):
                return route
        return None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._routes)
