"""The suite-wide leak scan: every log record of the test session and every audit entry
the tests' systems wrote, searched for CPR numbers, bearer tokens and the tests' secrets.

Log records are caught by a log-record factory, not by a handler: every record any
logger makes (root, `sikkerby.*`, uvicorn, httpx, every thread, every in-process server)
passes through it, before any handler's filter redacts it (a handler attached to the
uvicorn loggers is removed again by uvicorn's own logging setup each time a server is
configured). Its message is rendered at once, exception text included, and kept.

Audit tables are read when a `System` stops (its databases are still there). Secrets
are learnt as they are made: every API client's secret (`gateway.logic.create_client`),
and each system's key files (field encryption, keyed hash, signing key).

`tests/conftest.py` installs it for the whole session and fails the session, naming
each offending record with the offending part redacted, when anything is found, or
when the capture itself saw nothing.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.platform.cpr import InvalidCpr, parse_cpr

CPR_LIKE = re.compile(r"(?<![\d.,])\d{6}-?\d{4}(?![\d])")
# Not CPR numbers: UUIDs, and hex runs (hashes, request ids, UUIDs without dashes).
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                  r"[0-9a-fA-F]{12}")
HEX_RUN = re.compile(r"[0-9a-fA-F]{16,}")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]+)?")
BEARER = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]{16,}")
MIN_SECRET = 12
CANARY = "leak-scan canary"


def cpr_numbers(text: str) -> list[str]:
    """What in `text` is a valid CPR number (its date a real date), UUIDs and hex apart."""
    cleaned = HEX_RUN.sub("#", UUID.sub("#", text))
    found = []
    for match in CPR_LIKE.finditer(cleaned):
        try:
            parse_cpr(match.group(0))
        except InvalidCpr:
            continue
        found.append(match.group(0))
    return found


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for every known secret, longest first."""
    ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
    return re.compile("|".join(map(re.escape, ordered))) if ordered else None


def leaks(text: str, secrets: re.Pattern[str] | None = None) -> list[str]:
    kinds = []
    if cpr_numbers(text):
        kinds.append("CPR number")
    if JWT.search(text) or BEARER.search(text):
        kinds.append("bearer token")
    if secrets is not None and secrets.search(text):
        kinds.append("secret")
    return kinds


def redact(text: str, secrets: re.Pattern[str] | None = None) -> str:
    if secrets is not None:
        text = secrets.sub("[SECRET]", text)
    text = JWT.sub("[TOKEN]", text)
    text = BEARER.sub("Bearer [TOKEN]", text)
    for number in cpr_numbers(text):
        text = text.replace(number, "[CPR]")
    return text


@dataclass
class Finding:
    where: str
    kinds: list[str]
    text: str  # already redacted


@dataclass
class LeakScan:
    records: list[tuple[str, str, str]] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)
    audit_rows: int = 0
    audit_texts: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    systems: int = 0
    findings: list[Finding] = field(default_factory=list)
    failed: bool = False
    _factory: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # Capture ---------------------------------------------------------------------------
    def start(self) -> None:
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                text = record.getMessage()
            except Exception:  # a bad format string is not ours to fix here
                text = f"{record.msg} {record.args}"
            if record.exc_info:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info))
            if record.stack_info:
                text += "\n" + record.stack_info
            self.records.append((record.name, record.levelname, text))
            return record

        logging.setLogRecordFactory(factory)
        self._factory = factory
        self._canary()

    def _canary(self) -> None:
        canary = logging.getLogger("sikkerby.tests.leakscan")
        canary.propagate = False
        if not canary.handlers:
            canary.addHandler(logging.NullHandler())
        canary.warning(CANARY)

    def add_secrets(self, values: Iterable[str | None]) -> None:
        with self._lock:
            self.secrets.update(v for v in values if v and len(v) >= MIN_SECRET)

    def learn_key_files(self, keys_dir: Path) -> None:
        secrets_file = keys_dir / "secrets.json"
        if secrets_file.exists():
            stored = json.loads(secrets_file.read_text())
            values = [stored.get("hash_key")]
            for entry in (stored.get("field_encryption_keys") or "").split(","):
                values += [entry, entry.partition(":")[2]]
            self.add_secrets(values)
        signing = keys_dir / "signing.json"
        if signing.exists():
            for key in json.loads(signing.read_text()).get("keys", []):
                pem = key.get("private_pem", "")
                self.add_secrets(line for line in pem.splitlines() if "-----" not in line)

    def scan_audit_tables(self, settings: Any) -> None:
        """Every audit entry of one system's databases, kept for the end of the session."""
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        from services.platform.db import make_engine
        from services.platform.settings import ServiceName

        self.systems += 1
        for service in ServiceName:
            url = settings.database_url(service)
            engine = make_engine(url, writer=False)
            try:
                with engine.connect() as connection:
                    result = connection.execute(text(
                        "SELECT seq, actor, role, action, resource, citizen_id, purpose, "
                        "outcome, request_id FROM audit_entry"))
                    for row in result:
                        self.audit_rows += 1
                        self.audit_texts.append(
                            (f"audit_entry {service.value} seq {row[0]}",
                             " | ".join(str(v) for v in row[1:])))
            except SQLAlchemyError as exc:
                self.notes.append(f"audit table of {service.value} not read: "
                                  f"{type(exc).__name__}")
            finally:
                engine.dispose()

    @contextlib.contextmanager
    def watching_systems(self) -> Iterator[None]:
        """Learn every client secret as it is made, and read each system's audit tables
        and key files when it stops."""
        import pytest

        import gateway.cli
        import gateway.logic

        from ..support.system import ADMIN_SECRET, System

        self.add_secrets([ADMIN_SECRET])
        create_client = gateway.logic.create_client
        stop = System.stop

        def recording_create_client(*args: Any, **kwargs: Any) -> Any:
            new = create_client(*args, **kwargs)
            self.add_secrets([new.secret])
            return new

        def scanning_stop(system: System) -> None:
            try:
                self.learn_key_files(system.settings.keys_dir)
                self.add_secrets(list(getattr(system, "shared", {}).values()))
                self.scan_audit_tables(system.settings)
            finally:
                stop(system)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(gateway.logic, "create_client", recording_create_client)
            patch.setattr(gateway.cli, "create_client", recording_create_client)
            patch.setattr(System, "stop", scanning_stop)
            yield

    # Verdict -------------------------------------------------------------------------
    def finish(self) -> bool:
        """Scan everything kept; True when the session must fail."""
        if self._factory is None:
            return False
        before = len(self.records)
        self._canary()
        canaries = [r for r in self.records if r[2] == CANARY]
        if len(self.records) == before or len(canaries) < 2:
            self.notes.append("the log capture was switched off during the session "
                              "(the record factory was replaced)")
            self.failed = True
        if self.systems and not self.audit_rows:
            self.notes.append("systems ran, yet no audit entry was read")
            self.failed = True
        texts = [(f"log {level} {name}", message) for name, level, message in self.records]
        texts += self.audit_texts
        # Which secrets appear at all: one fast substring search each over everything,
        # then a pattern of only those (usually none) for the texts one by one.
        everything = "\x00".join(text for _, text in texts)
        secrets = secret_pattern(s for s in self.secrets if s in everything)
        for where, text in texts:
            kinds = leaks(text, secrets)
            if kinds:
                self.findings.append(Finding(where, kinds, redact(text, secrets)[:400]))
        if self.findings:
            self.failed = True
        return self.failed

    def summary(self) -> list[str]:
        if self._factory is None:
            return []
        lines = [f"leak scan: {len(self.records)} log records, {self.audit_rows} audit "
                 f"entries of {self.systems} systems, {len(self.secrets)} known secrets; "
                 f"{len(self.findings)} findings"]
        lines += [f"  note: {note}" for note in self.notes]
        for finding in self.findings[:25]:
            lines.append(f"  LEAK ({', '.join(finding.kinds)}) in {finding.where}: "
                         f"{finding.text}")
        if len(self.findings) > 25:
            lines.append(f"  ... and {len(self.findings) - 25} more")
        return lines
