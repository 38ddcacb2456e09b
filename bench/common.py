"""What every bench runner shares: how it is started and stopped, and the settings of the
system it measures (fresh keys, limits far above anything a bench sends)."""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from services.platform.settings import DOWNSTREAM_SERVICES

HOST = "127.0.0.1"
RATE_LIMIT = "100000000"  # per minute and burst: far above anything a bench sends
TOKEN_LIFETIME_SECONDS = 900  # the most Settings allows
ADMIN_CLIENT_ID = "bench-admin"


class BenchError(RuntimeError):
    """The bench could not set up or measure; the message says why."""


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def load_average() -> str:
    """The machine's 1-minute load average: on a shared machine, what else was running."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "unknown"


def system_environment(data_dir: Path, ports: Mapping[str, int],
                       database_urls: Mapping[str, str]) -> dict[str, str]:
    """The settings of the system under measurement: every process gets the same, with
    fresh field and hash keys (the rows a bench builds are encrypted with them)."""
    return {
        "SIKKERBY_DATA_DIR": str(data_dir),
        "SIKKERBY_ENV": "development",
        "SIKKERBY_HOST": HOST,
        "SIKKERBY_PORT": str(ports["gateway"]),
        **{f"SIKKERBY_{name.upper()}_DATABASE_URL": url for name, url in database_urls.items()},
        "SIKKERBY_FIELD_ENCRYPTION_KEYS": f"bench:{b64(os.urandom(32))}",
        "SIKKERBY_FIELD_ENCRYPTION_ACTIVE_KEY": "bench",
        "SIKKERBY_HASH_KEY": b64(os.urandom(32)),
        "SIKKERBY_ADMIN_CLIENT_ID": ADMIN_CLIENT_ID,
        "SIKKERBY_ADMIN_CLIENT_SECRET": secrets.token_urlsafe(48),
        "SIKKERBY_RATE_LIMIT_PER_MINUTE": RATE_LIMIT,
        "SIKKERBY_RATE_LIMIT_BURST": RATE_LIMIT,
        # The bench and the services ask for tokens from one address.
        "SIKKERBY_TOKEN_RATE_LIMIT_PER_MINUTE": RATE_LIMIT,
        "SIKKERBY_TOKEN_LIFETIME_SECONDS": str(TOKEN_LIFETIME_SECONDS),
        **{f"SIKKERBY_{s.value.upper()}_URL": f"http://{HOST}:{ports[s.value]}"
           for s in DOWNSTREAM_SERVICES},
    }


def bench_main(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a bench: SIGTERM and Ctrl-C unwind through its finally blocks, so every process
    it started is stopped; a set-up failure is one line and exit status 2."""

    def on_term(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    try:
        return run(args)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("bench: interrupted; every process it started was stopped.", file=sys.stderr)
        return 130
