"""What every activation test module shares."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ..support.system import System


@pytest.fixture
def http(system: System) -> Iterator[httpx.Client]:
    with system.http() as client:
        yield client
