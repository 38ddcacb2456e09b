"""The suite-wide leak scan itself: what it counts as a leak, what it must not, and that
it really hears every logger (the verdict on the whole session is tests/conftest.py's)."""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import date

from ..conftest import LEAK_SCAN
from ..support.builders import make_cpr
from .logscan import cpr_numbers, leaks, redact, secret_pattern

JWT_LIKE = ("eyJhbGciOiJFUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJjLXRlc3QiLCJleHAiOjF9."
            "c2lnbmF0dXJlLXBhcnQ")


def test_cpr_numbers_are_found_with_or_without_the_dash() -> None:
    plain, dashed = make_cpr(date(1990, 5, 17)), make_cpr(date(1985, 12, 1), dash=True)
    for text in (f"cpr={plain}", f'{{"cpr": "{dashed}"}}', f"x{plain}y", f"a {dashed}."):
        assert leaks(text) == ["CPR number"], text
    assert redact(f"cpr={plain}") == "cpr=[CPR]"


def test_numbers_that_are_not_cpr_numbers_are_not_leaks() -> None:
    benign = [
        str(uuid.UUID("12345678-1234-5678-1234-567812345678")),
        "request 1705901234abcdef1705901234abcdef",  # a hex request id
        "a" + "1705901234" + "b" * 30,  # inside a long hex run: a hash
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "2026-05-01 10:00:00,123 INFO 12345678",  # a timestamp, a CVR number
        "exp 1767225600",  # epoch seconds: month 67 is no date
        "budget 1500000000 øre",  # month 00
        "took 0.1705901234 s",  # a fraction
        "17059012345",  # eleven digits
        "170590-XXXX",  # masked, as responses may carry it
        "3205901234",  # day 32
    ]
    for text in benign:
        assert leaks(text) == [], text
        assert cpr_numbers(text) == []


def test_tokens_and_known_secrets_are_leaks() -> None:
    assert leaks(f"Authorization: Bearer {JWT_LIKE}") == ["bearer token"]
    assert leaks(f"token {JWT_LIKE}") == ["bearer token"]
    assert leaks("Bearer c3VwZXItc2VjcmV0LXRva2Vu") == ["bearer token"]
    assert leaks('WWW-Authenticate: Bearer error="invalid_token"') == []
    secrets = secret_pattern(["s3cret-value-0123456789", "another-secret-abcdef"])
    assert leaks("client_secret=s3cret-value-0123456789&x=1", secrets) == ["secret"]
    assert leaks("nothing to see", secrets) == []
    assert redact(f"a s3cret-value-0123456789 b {JWT_LIKE}", secrets) == (
        "a [SECRET] b [TOKEN]")


def test_every_logger_of_every_thread_is_heard() -> None:
    marker = f"leak-scan-probe-{uuid.uuid4().hex}"

    def log_from_a_thread() -> None:
        logging.getLogger("uvicorn.error").error("%s uvicorn", marker)

    thread = threading.Thread(target=log_from_a_thread)
    thread.start()
    thread.join()
    logging.getLogger("sikkerby.somewhere").warning("%s sikkerby", marker)
    try:
        raise ValueError(marker + " in a traceback")
    except ValueError:
        logging.getLogger("root-child").exception("failed")
    heard = [text for _, _, text in LEAK_SCAN.records if marker in text]
    assert any(text.endswith(" uvicorn") for text in heard)
    assert any(text.endswith(" sikkerby") for text in heard)
    assert any("in a traceback" in text for text in heard)
    assert LEAK_SCAN.records and any("canary" in text for _, _, text in LEAK_SCAN.records)
