"""What the activation service asks the other services, through the gateway, each with
the narrow scope that call needs. Called from the placement rules inside their
transaction (in a worker thread), hence the synchronous client."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.platform.clients import SyncGatewayClient
from services.platform.problems import NotFound, ServiceUnavailable
from services.platform.scopes import Scope


@dataclass(frozen=True)
class Eligibility:
    status: str
    birth_date: date
    readiness: str
    open_since: date | None  # the start of the open enrolment period, if any


@dataclass(frozen=True)
class ContractTerms:
    id: uuid.UUID
    provider_id: uuid.UUID
    offer_types: frozenset[str]
    starts_on: date
    ends_on: date
    capacity: int
    weekly_price_ore: int
    max_threat_level: int


@dataclass(frozen=True)
class GroupDecision:
    allowed: bool
    measure: str | None
    site_members_needed: bool = False  # ask again, with everyone at the place then


class Neighbours:
    def __init__(self, gateway: SyncGatewayClient) -> None:
        self.gateway = gateway
        # For asking two services at once (the placement's eligibility and contract terms).
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="neighbours")

    def eligibility_and_terms(self, citizen_id: uuid.UUID, contract_id: uuid.UUID
                              ) -> tuple[Eligibility | None, ContractTerms | None]:
        """Both answers, asked at the same time: a placement waits for the slower one
        only. An error of either is raised here, as if asked one after the other."""
        terms = self._pool.submit(self.contract_terms, contract_id)
        try:
            eligibility = self.eligibility(citizen_id)
        except BaseException:
            wait([terms])  # never leave the other call running; the first error counts
            raise
        return eligibility, terms.result()

    def eligibility(self, citizen_id: uuid.UUID) -> Eligibility | None:
        """None when the citizens service knows no such citizen."""
        try:
            body = self.gateway.json("GET", f"/v1/citizens/{citizen_id}/eligibility",
                                     scope=Scope.citizens_status)
        except NotFound:
            return None
        open_since = next((date.fromisoformat(p["enrolled_on"]) for p in body["enrolments"]
                           if p["exited_on"] is None), None)
        return Eligibility(status=body["status"],
                           birth_date=date.fromisoformat(body["birth_date"]),
                           readiness=body["readiness"], open_since=open_since)

    def readiness(self, citizen_id: uuid.UUID) -> str:
        eligibility = self.eligibility(citizen_id)
        if eligibility is None:
            raise NotFound("No such citizen.")
        return eligibility.readiness

    def enrolled_during(self, first: date, last: date) -> list[uuid.UUID]:
        ids: list[uuid.UUID] = []
        cursor: str | None = None
        for _ in range(1000):  # bounded: 500 per page
            query = f"from={first.isoformat()}&to={last.isoformat()}&limit=500"
            page = self.gateway.json(
                "GET", f"/v1/citizens/enrolled-during?{query}"
                + (f"&cursor={cursor}" if cursor else ""), scope=Scope.citizens_status)
            ids += [uuid.UUID(item["id"]) for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        return ids

    def full_year_persons(self, as_of: date) -> float:
        body = self.gateway.json("GET", f"/v1/reports/enrolment?as_of={as_of.isoformat()}",
                                 scope=Scope.reports_read)
        return float(body["full_year_persons"])

    def contract_terms(self, contract_id: uuid.UUID) -> ContractTerms | None:
        try:
            body = self.gateway.json("GET", f"/v1/contracts/{contract_id}",
                                     scope=Scope.contracts_terms)
        except NotFound:
            return None
        return ContractTerms(
            id=uuid.UUID(body["id"]), provider_id=uuid.UUID(body["provider_id"]),
            offer_types=frozenset(body["offer_types"]),
            starts_on=date.fromisoformat(body["starts_on"]),
            ends_on=date.fromisoformat(body["ends_on"]), capacity=body["capacity"],
            weekly_price_ore=body["weekly_price_ore"],
            max_threat_level=body["max_threat_level"])

    def group_check(self, citizen_id: uuid.UUID, *, member_ids: list[uuid.UUID],
                    cohort_max_size: int | None, contract_max_threat_level: int,
                    on: date, site_member_ids: list[uuid.UUID] | None = None
                    ) -> GroupDecision:
        payload: dict[str, Any] = {
            "citizen_id": str(citizen_id), "member_ids": [str(m) for m in member_ids],
            "cohort_max_size": cohort_max_size,
            "contract_max_threat_level": contract_max_threat_level, "on": on.isoformat()}
        if site_member_ids is not None:
            payload["site_member_ids"] = [str(m) for m in site_member_ids]
        response = self.gateway.request("POST", "/v1/group-checks",
                                        scope=Scope.security_check, json=payload)
        if response.status_code != 200:  # fail closed: no answer, no placement
            raise ServiceUnavailable("The security service gave no answer on the measures.")
        body = response.json()
        return GroupDecision(allowed=bool(body["allowed"]), measure=body.get("measure"),
                             site_members_needed=body.get("site_members_needed") is True)
