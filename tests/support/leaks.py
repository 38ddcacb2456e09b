"""A witness for leak tests: it keeps every response body a module's client saw and every
log record emitted meanwhile (from every thread, before any redaction), so a final test
can scan them all for what must never appear."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpx


class LeakWitness(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.bodies: list[str] = []
        self.log_lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.log_lines.append(f"{record.getMessage()} {record.exc_text or ''}")

    @contextmanager
    def listening(self) -> Iterator[LeakWitness]:
        loggers = [logging.getLogger(), logging.getLogger("uvicorn"),
                   logging.getLogger("uvicorn.error")]
        root = logging.getLogger()
        old_level = root.level
        root.setLevel(logging.DEBUG)
        for logger in loggers:
            logger.addHandler(self)
        try:
            yield self
        finally:
            for logger in loggers:
                logger.removeHandler(self)
            root.setLevel(old_level)

    def client(self, base_url: str, timeout: float = 60) -> httpx.Client:
        def keep(response: httpx.Response) -> None:
            response.read()
            self.bodies.append(response.text)

        return httpx.Client(base_url=base_url, timeout=timeout,
                            event_hooks={"response": [keep]})

    def assert_never_saw(self, secrets: Iterable[str]) -> None:
        secrets = [s for s in secrets if s]
        assert self.bodies and self.log_lines and secrets, "nothing was witnessed"
        for text in self.bodies + self.log_lines:
            for secret in secrets:
                assert secret not in text
