"""How the gateway forwards a request to a service: one pooled keep-alive client.

The forwarder is most of the gateway's cost, so it was measured before it was chosen
(bench/gateway runs both in one run): with aiohttp's `ClientSession` the gateway kept
about 1.2-1.6 times the throughput it kept with a default `httpx.AsyncClient` at 16
connections, and spent 2.5-4 times less CPU per request. aiohttp is the default; httpx
stays selectable (`SIKKERBY_GATEWAY_FORWARDER=httpx`) so the bench can compare them.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp
import httpx
from yarl import URL

RawHeaders = list[tuple[bytes, bytes]]

# Hop-by-hop headers (RFC 9110 7.6.1) and those the server sets itself.
_DROP_RESPONSE = frozenset({
    b"connection", b"keep-alive", b"transfer-encoding", b"te", b"trailer", b"upgrade",
    b"proxy-authenticate", b"content-length", b"date", b"server",
})


class UpstreamUnavailable(Exception):
    """The service refused the connection or closed it: 503."""


class UpstreamTimeout(Exception):
    """The service did not answer in time: 504."""


class UpstreamError(Exception):
    """The service answered with something that is not HTTP: 502."""


class Forwarder(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def forward(self, url: str, method: str, headers: dict[str, str], body: bytes
                      ) -> tuple[int, RawHeaders, bytes]: ...


def response_headers(raw: list[tuple[bytes, bytes]]) -> RawHeaders:
    return [(k.lower(), v) for k, v in raw if k.lower() not in _DROP_RESPONSE]


class AiohttpForwarder:
    def __init__(self, *, timeout: float, connect_timeout: float, pool_size: int = 100) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=connect_timeout)
        self._pool_size = pool_size
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self._pool_size, keepalive_timeout=30,
                                         ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=("User-Agent",),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def forward(self, url: str, method: str, headers: dict[str, str], body: bytes
                      ) -> tuple[int, RawHeaders, bytes]:
        assert self._session is not None, "start() first"
        try:
            async with self._session.request(
                method, URL(url, encoded=True), headers=headers, data=body or None,
                allow_redirects=False,
            ) as response:
                content = await response.read()
                return response.status, response_headers(list(response.raw_headers)), content
        except TimeoutError as exc:
            raise UpstreamTimeout from exc
        except (aiohttp.ClientConnectorError, aiohttp.ServerDisconnectedError) as exc:
            raise UpstreamUnavailable from exc
        except aiohttp.ClientError as exc:
            raise UpstreamError from exc


class HttpxForwarder:
    def __init__(self, *, timeout: float, connect_timeout: float, pool_size: int = 100) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size),
        )

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self._client.aclose()

    async def forward(self, url: str, method: str, headers: dict[str, str], body: bytes
                      ) -> tuple[int, RawHeaders, bytes]:
        try:
            response = await self._client.request(method, url, headers=headers, content=body)
        except httpx.TimeoutException as exc:
            raise UpstreamTimeout from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
            raise UpstreamUnavailable from exc
        except httpx.HTTPError as exc:
            raise UpstreamError from exc
        return response.status_code, response_headers(response.headers.raw), response.content


def make_forwarder(kind: str, *, timeout: float, connect_timeout: float) -> Forwarder:
    if kind == "httpx":
        return HttpxForwarder(timeout=timeout, connect_timeout=connect_timeout)
    return AiohttpForwarder(timeout=timeout, connect_timeout=connect_timeout)
