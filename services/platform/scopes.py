"""Roles and scopes: the access matrix of API.md, in one place.

A route names the scopes it needs; a token carries the scopes of its client's role (or
fewer, when the client asked for fewer). Object-level checks (a provider sees only its
own placements) are the rules' job, on top of these.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    caseworker = "caseworker"
    team_lead = "team_lead"
    provider = "provider"
    police = "police"
    security_officer = "security_officer"
    analyst = "analyst"
    auditor = "auditor"
    admin = "admin"
    service = "service"


class Scope(StrEnum):
    citizens_read = "citizens:read"
    citizens_write = "citizens:write"
    providers_read = "providers:read"
    providers_write = "providers:write"
    activation_read = "activation:read"  # hours caps, cohorts, placements
    activation_write = "activation:write"
    attendance_read = "attendance:read"
    attendance_write = "attendance:write"
    sanctions_read = "sanctions:read"  # conversations and sanction cases
    sanctions_write = "sanctions:write"
    sanctions_decide = "sanctions:decide"
    threats_write = "threats:write"  # police uploads: assessments and conflicts
    threats_read = "threats:read"  # full assessments: security coordinator only
    constraints_read = "constraints:read"  # measures only
    referrals_read = "referrals:read"
    reports_read = "reports:read"  # aggregates only
    audit_read = "audit:read"
    clients_admin = "clients:admin"
    # A citizen's own data, gathered across services (GDPR art. 15): caseworkers only.
    citizens_export = "citizens:export"
    # Narrow scopes for the services' own calls to each other.
    citizens_status = "citizens:status"  # is this citizen enrolled, birth date
    citizens_resolve = "citizens:resolve"  # CPR hash -> citizen id, for the security service
    contracts_terms = "contracts:terms"  # a contract's terms, for the activation service
    security_check = "security:check"  # constraints and group checks, for activation
    placements_status = "placements:status"  # active placements, for the security service
    activation_export = "activation:export"  # all activation data on one citizen, for exports
    threats_link = "threats:link"  # a newly registered citizen, for the security service


SCOPE_DESCRIPTIONS: dict[Scope, str] = {
    Scope.citizens_read: "Read citizens and enrolments",
    Scope.citizens_write: "Register, enrol and exit citizens",
    Scope.providers_read: "Read providers and contracts (providers: their own)",
    Scope.providers_write: "Manage providers and contracts",
    Scope.activation_read: "Read hours caps, cohorts and placements (providers: their own)",
    Scope.activation_write: "Set hours caps, create cohorts and placements",
    Scope.attendance_read: "Read attendance (providers: their own)",
    Scope.attendance_write: "Report attendance for own placements",
    Scope.sanctions_read: "Read conversations and sanction cases",
    Scope.sanctions_write: "Book conversations, hearings and contact attempts",
    Scope.sanctions_decide: "Decide sanction cases",
    Scope.threats_write: "Upload threat assessments and conflicts (police)",
    Scope.threats_read: "Read full threat assessments (security coordinator)",
    Scope.constraints_read: "Read the safety measures in force for a citizen",
    Scope.referrals_read: "Read referrals from the police",
    Scope.reports_read: "Read aggregate reports",
    Scope.audit_read: "Read and verify the audit log",
    Scope.clients_admin: "Manage API clients",
    Scope.citizens_export: "Export everything held about one citizen (access requests)",
    Scope.citizens_status: "Service: a citizen's enrolment status and birth date",
    Scope.citizens_resolve: "Service: resolve a CPR number to a citizen id",
    Scope.contracts_terms: "Service: a contract's terms",
    Scope.security_check: "Service: constraints and group checks",
    Scope.placements_status: "Service: a citizen's active placements",
    Scope.activation_export: "Service: everything the activation service holds on one "
                             "citizen, for the citizens service's export",
    Scope.threats_link: "Service: a citizen was registered; police reports made before "
                        "apply to them from now on",
}

ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.caseworker: frozenset({
        Scope.citizens_read, Scope.citizens_write, Scope.providers_read,
        Scope.activation_read, Scope.activation_write, Scope.attendance_read,
        Scope.sanctions_read, Scope.sanctions_write, Scope.sanctions_decide,
        Scope.constraints_read, Scope.referrals_read, Scope.citizens_export,
    }),
    Role.team_lead: frozenset({
        Scope.citizens_read, Scope.providers_read, Scope.activation_read,
        Scope.attendance_read, Scope.sanctions_read, Scope.constraints_read,
        Scope.reports_read,
    }),
    Role.provider: frozenset({
        Scope.providers_read, Scope.activation_read, Scope.attendance_read,
        Scope.attendance_write, Scope.constraints_read,
    }),
    Role.police: frozenset({Scope.threats_write}),
    Role.security_officer: frozenset({
        Scope.threats_read, Scope.constraints_read, Scope.referrals_read,
    }),
    Role.analyst: frozenset({Scope.reports_read}),
    Role.auditor: frozenset({Scope.audit_read}),
    Role.admin: frozenset({Scope.providers_read, Scope.providers_write, Scope.clients_admin}),
    # A service client gets only the scopes it is created with, from this set.
    Role.service: frozenset({
        Scope.citizens_status, Scope.citizens_resolve, Scope.contracts_terms,
        Scope.security_check, Scope.placements_status, Scope.reports_read,
        Scope.activation_export, Scope.threats_link,
    }),
}

# The scopes each service's own client needs for its calls to the others.
SERVICE_CLIENT_SCOPES: dict[str, frozenset[Scope]] = {
    # activation:export: the activation part of a citizen's export (GET
    # /v1/citizens/{id}/export), read with the citizens service's own token.
    # threats:link: a registration is announced to the security service, so that a
    # person the police reported before is constrained from the first placement on.
    "citizens": frozenset({Scope.activation_export, Scope.threats_link}),
    "providers": frozenset(),
    "activation": frozenset({
        # reports:read: full-year persons from the enrolment report, for the cost per
        # full-year person in the spending report (an aggregate, no names).
        Scope.citizens_status, Scope.contracts_terms, Scope.security_check,
        Scope.reports_read,
    }),
    "security": frozenset({Scope.citizens_resolve, Scope.placements_status}),
}


def parse_scopes(text: str | None) -> frozenset[Scope]:
    """Unknown scope names raise ValueError."""
    if not text:
        return frozenset()
    return frozenset(Scope(name) for name in text.split())


def format_scopes(scopes: frozenset[Scope] | set[Scope]) -> str:
    return " ".join(sorted(s.value for s in scopes))
