"""Fixtures of the security service's tests: one system per module and backend."""

from __future__ import annotations

import httpx
import pytest

from ..support.system import System
from .support import Callers, make_callers


@pytest.fixture(scope="module")
def callers(system: System) -> Callers:
    return make_callers(system)


@pytest.fixture(scope="module")
def http(system: System):
    with httpx.Client(base_url=system.url, timeout=60) as client:
        yield client
