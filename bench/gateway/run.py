"""What does the gateway cost? An authenticated light GET measured three ways in one run.

    python -m bench.gateway.run [--duration S] [--quick] [--rounds N] [--json PATH]

Targets, each at 1 and at 16 connections, driven by wrk:
  direct             the providers service itself (it verifies the token too)
  gateway (aiohttp)  the sikkerby gateway with its default forwarder
  gateway (httpx)    a second gateway process with SIKKERBY_GATEWAY_FORWARDER=httpx
  nginx              a plain reverse proxy with a keep-alive upstream: the reference

All of them run in one go because the machine is shared and noisy: only ratios against
the direct figures of the same run are meaningful, never the absolute numbers. Every
process listens on 127.0.0.1 and everything lives in a temporary directory that is
removed at the end. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from bench.common import ADMIN_CLIENT_ID as CLIENT_ID
from bench.common import (
    HOST,
    RATE_LIMIT,
    BenchError,
    bench_main,
    system_environment,
)
from gateway.cli import APP_FACTORIES, prepare
from services.platform.settings import DOWNSTREAM_SERVICES, ServiceName, Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
CONNECTIONS = (1, 16)
# The goals the default gateway is held to (see the printed "Targets").
MIN_THROUGHPUT_PCT_AT_16 = 50.0
MAX_ADDED_P50_MS = 3.0
TOKEN_REFRESH_AFTER_SECONDS = 300  # with --duration capped, a token never expires mid-case
MAX_DURATION_SECONDS = 120
READY_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
WRK_TIMEOUT_SECONDS = 10
NGINX_PATHS = "/usr/sbin:/usr/local/sbin:/sbin"  # nginx is often not on a user's PATH


@dataclass(frozen=True)
class Target:
    name: str
    url: str  # base URL, no trailing slash
    proxy: str | None  # the name of the process in front of the service, if any


@dataclass
class Measurement:
    target: str
    connections: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers plus socket errors: any makes the case suspect
    proxy_cpu_us_per_request: float | None
    service_cpu_us_per_request: float | None
    wrk_output: str = ""  # kept for the JSON's rounds: the detail behind any errors


# ------------------------------------------------------------------------------------
# Tools and ports


def find_tools() -> tuple[str, str]:
    """wrk and nginx, or a clear message naming the Debian package to install."""
    wrk = shutil.which("wrk")
    search_path = os.environ.get("PATH", "") + os.pathsep + NGINX_PATHS
    nginx = shutil.which("nginx", path=search_path)
    missing = []
    if wrk is None:
        missing.append("wrk (Debian package: wrk)")
    if nginx is None:
        missing.append("nginx (Debian package: nginx-light)")
    if missing:
        raise BenchError("missing: " + "; ".join(missing)
                         + ". Install with: apt-get install wrk nginx-light")
    assert wrk is not None and nginx is not None
    return wrk, nginx


def free_ports(count: int) -> list[int]:
    """Distinct free ports: all sockets stay bound until every port is chosen."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


# ------------------------------------------------------------------------------------
# Processes


class Processes:
    """Every process the bench starts, so that `stop_all` can end them whatever happens."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{name}.log").open("wb")
        try:
            child = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()  # the child holds its own copy of the descriptor
        self.children[name] = child
        return child

    def log_tail(self, name: str, lines: int = 20) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def check_alive(self) -> None:
        for name, child in self.children.items():
            if child.poll() is not None:
                raise BenchError(f"{name} exited with {child.returncode}:\n"
                                 + self.log_tail(name))

    def stop_all(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()  # uvicorn and nginx both shut down cleanly on SIGTERM
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=5)


def uvicorn_command(factory: str, port: int) -> list[str]:
    # The same command line as `sikkerby up` (gateway.cli._spawn).
    return [sys.executable, "-m", "uvicorn", "--factory", factory, "--host", HOST,
            "--port", str(port), "--no-access-log", "--log-level", "warning"]


def wait_healthy(processes: Processes, name: str, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        processes.check_alive()
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise BenchError(f"{name} was not healthy after {READY_TIMEOUT_SECONDS:.0f} s:\n"
                     + processes.log_tail(name))


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process (all its threads) and its direct children, from
    /proc: where the time goes per request. None where /proc is not there."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(p) for p in children]  # nginx's worker
    total = 0.0
    for p in pids:
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            if p == pid:
                return None
            continue
        fields = stat.rpartition(")")[2].split()  # the name in parentheses may hold spaces
        total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


# ------------------------------------------------------------------------------------
# Environment and set-up


@contextlib.contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Run `prepare(Settings())` in this process with exactly the bench's SIKKERBY_*
    variables: a developer's own (say a PostgreSQL URL) must not leak into it."""
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith("SIKKERBY_")]:
            del os.environ[key]
        os.environ.update(values)
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def base_environment(tmp: Path, ports: dict[str, int]) -> dict[str, str]:
    # Only the providers service runs; the others' URLs point at ports nobody listens on.
    return system_environment(tmp / "data", ports, {})


def child_environment(bench_env: dict[str, str], shared: dict[str, str],
                      service: ServiceName, **extra: str) -> dict[str, str]:
    """What `sikkerby up` hands a child (gateway.cli._child_env), built from the bench's
    variables instead of this process's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIKKERBY_")}
    env.update(bench_env)
    env.update({k: v for k, v in shared.items() if k.startswith("SIKKERBY_")})
    secret = shared.get(f"{service.value.upper()}_SERVICE_CLIENT_SECRET")
    if secret:
        env["SIKKERBY_SERVICE_CLIENT_ID"] = f"svc-{service.value}"
        env["SIKKERBY_SERVICE_CLIENT_SECRET"] = secret
    if service is not ServiceName.gateway:
        env.pop("SIKKERBY_ADMIN_CLIENT_SECRET", None)
    env.update(extra)
    return env


NGINX_CONF = """\
# A plain reverse proxy: the cost of one well-made hop, for reference.
daemon off;
worker_processes 1;  # one process, like each uvicorn server here
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    upstream providers {{
        server {host}:{upstream_port};
        keepalive 32;
    }}
    server {{
        listen {host}:{port};
        location / {{
            proxy_pass http://providers;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


def start_nginx(processes: Processes, nginx: str, tmp: Path, port: int,
                upstream_port: int) -> None:
    prefix = tmp / "nginx"
    prefix.mkdir()
    conf = prefix / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=prefix, host=HOST, port=port,
                                      upstream_port=upstream_port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIKKERBY_")}
    processes.start("nginx", [nginx, "-p", str(prefix), "-c", str(conf)], env)


class Api:
    """The few calls the set-up needs, through the gateway."""

    def __init__(self, gateway_url: str, client_secret: str) -> None:
        self.gateway_url = gateway_url
        self.client_secret = client_secret
        self.token = ""
        self.token_at = 0.0

    def fresh_token(self) -> str:
        """A token for the next case; a new one only when the current is getting old
        (the token endpoint is rate-limited to a few a minute, as it should be)."""
        if self.token and time.monotonic() - self.token_at < TOKEN_REFRESH_AFTER_SECONDS:
            return self.token
        response = httpx.post(f"{self.gateway_url}/v1/auth/token", timeout=10.0, data={
            "grant_type": "client_credentials", "client_id": CLIENT_ID,
            "client_secret": self.client_secret,
        })
        if response.status_code != 200:
            raise BenchError(f"token request: {response.status_code} {response.text[:300]}")
        self.token = response.json()["access_token"]
        self.token_at = time.monotonic()
        return self.token

    def create_provider(self) -> str:
        response = httpx.post(f"{self.gateway_url}/v1/providers", timeout=10.0,
                              headers={"Authorization": f"Bearer {self.fresh_token()}"},
                              json={"name": "Bench ApS", "cvr": "12345678"})
        if response.status_code != 201:
            raise BenchError(f"create provider: {response.status_code} {response.text[:300]}")
        return response.json()["id"]


def check_target(target: Target, path: str, token: str, expected_id: str) -> None:
    """One request first: a bench of 401s or 404s would measure nothing useful."""
    response = httpx.get(f"{target.url}{path}", timeout=10.0,
                         headers={"Authorization": f"Bearer {token}"})
    if response.status_code != 200 or response.json().get("id") != expected_id:
        raise BenchError(f"{target.name}: GET {path} gave {response.status_code} "
                         f"{response.text[:300]}")
    if target.proxy and target.proxy.startswith("gateway") and (
            "x-request-id" not in response.headers):
        raise BenchError(f"{target.name}: no X-Request-ID on the answer")


# ------------------------------------------------------------------------------------
# wrk

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_PERCENTILE = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_RPS = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET_ERRORS = re.compile(
    r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def parse_wrk(output: str) -> dict[str, float]:
    """Requests/s, p50 and p99 (ms), the request count and the errors from wrk --latency."""
    rps = _RPS.search(output)
    total = _TOTAL.search(output)
    percentiles = {int(p): float(value) * _UNITS_MS[unit]
                   for p, value, unit in _PERCENTILE.findall(output)}
    if rps is None or total is None or set(percentiles) != {50, 99}:
        raise BenchError("could not read wrk's output:\n" + output)
    errors = sum(int(n) for n in _NON_2XX.findall(output))
    socket_errors = _SOCKET_ERRORS.search(output)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    return {"rps": float(rps.group(1)), "p50": percentiles[50], "p99": percentiles[99],
            "requests": int(total.group(1)), "errors": errors}


def run_wrk(wrk: str, url: str, token: str, connections: int, seconds: float) -> str:
    threads = 1 if connections == 1 else 2
    # --timeout well above any latency seen here: wrk leaves slower answers out of the
    # latency figures (it counts them as timeouts), which would flatter the p99.
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
               f"--timeout={WRK_TIMEOUT_SECONDS}s", "--latency",
               "-H", f"Authorization: Bearer {token}", url]
    result = subprocess.run(command, capture_output=True, text=True, check=False,
                            timeout=seconds + WRK_TIMEOUT_SECONDS + 30)
    if result.returncode != 0:
        raise BenchError(f"wrk failed ({result.returncode}): {result.stderr or result.stdout}")
    return result.stdout


def measure(wrk: str, target: Target, path: str, token: str, connections: int,
            duration: float, warmup: float, pids: dict[str, int]) -> Measurement:
    # Warm-up at the same concurrency: token and JWKS caches, the forwarder's pool of
    # upstream connections, SQLite's page cache.
    run_wrk(wrk, f"{target.url}{path}", token, connections, warmup)
    service_pid = pids["providers"]
    proxy_pid = pids.get(target.proxy) if target.proxy else None
    before = {pid: cpu_seconds(pid) for pid in (service_pid, proxy_pid) if pid}
    output = run_wrk(wrk, f"{target.url}{path}", token, connections, duration)
    after = {pid: cpu_seconds(pid) for pid in before}
    parsed = parse_wrk(output)

    def cpu_us_per_request(pid: int | None) -> float | None:
        if pid is None or before.get(pid) is None or after.get(pid) is None:
            return None
        return (after[pid] - before[pid]) / max(1, int(parsed["requests"])) * 1e6

    return Measurement(target=target.name, connections=connections,
                       requests_per_second=parsed["rps"], p50_ms=parsed["p50"],
                       p99_ms=parsed["p99"], requests=int(parsed["requests"]),
                       errors=int(parsed["errors"]),
                       proxy_cpu_us_per_request=cpu_us_per_request(proxy_pid),
                       service_cpu_us_per_request=cpu_us_per_request(service_pid),
                       wrk_output=output)


def median_of(rounds: list[Measurement]) -> Measurement:
    """Each figure's median over the rounds (one round: that round)."""

    def med(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    first = rounds[0]
    return Measurement(
        target=first.target, connections=first.connections,
        requests_per_second=statistics.median(m.requests_per_second for m in rounds),
        p50_ms=statistics.median(m.p50_ms for m in rounds),
        p99_ms=statistics.median(m.p99_ms for m in rounds),
        requests=sum(m.requests for m in rounds), errors=sum(m.errors for m in rounds),
        proxy_cpu_us_per_request=med([m.proxy_cpu_us_per_request for m in rounds]),
        service_cpu_us_per_request=med([m.service_cpu_us_per_request for m in rounds]),
    )


# ------------------------------------------------------------------------------------
# Report

DIRECT, GATEWAY, GATEWAY_HTTPX, NGINX = ("direct", "gateway (aiohttp)", "gateway (httpx)",
                                         "nginx")


def _check(target: str, values: dict[str, str], passed: bool, others: list[str]) -> dict:
    return {"target": target, "value": values[GATEWAY], "passed": passed,
            "reference": {name: values[name] for name in others}}


def _without_output(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "wrk_output"}


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def compare(results: dict[tuple[str, int], Measurement], name: str,
            connections: int) -> tuple[float, float]:
    """(throughput as % of direct, p50 added vs direct in ms) at the same concurrency."""
    m, d = results[(name, connections)], results[(DIRECT, connections)]
    return 100.0 * m.requests_per_second / d.requests_per_second, m.p50_ms - d.p50_ms


def report(results: dict[tuple[str, int], Measurement], names: list[str]) -> list[dict]:
    header = (f"{'target':<18} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'% direct':>9} {'p50 +ms':>8} {'proxy CPU':>10} {'svc CPU':>8} {'errors':>6}")
    print(header)
    print("-" * len(header))
    for connections in CONNECTIONS:
        for name in names:
            m = results[(name, connections)]
            pct, added = compare(results, name, connections)
            direct = name == DIRECT
            print(f"{name:<18} {connections:>5} {m.requests_per_second:>9.1f} "
                  f"{m.p50_ms:>8.2f} {m.p99_ms:>8.2f} {pct:>8.1f}% "
                  f"{'-' if direct else format(added, '+.2f'):>8} "
                  f"{_fmt(m.proxy_cpu_us_per_request, '.0f'):>10} "
                  f"{_fmt(m.service_cpu_us_per_request, '.0f'):>8} {m.errors:>6}")
        print()
    print("CPU columns: microseconds of CPU per request (user + system, all threads) spent by")
    print("the proxy in front (gateway or nginx) and by the providers service behind it.")
    print()

    # The p50 target is judged at both concurrencies. At 1 connection it is the cost of
    # the hop itself; at 16 it also holds queueing behind a saturated service, which a
    # proxy that lowers throughput lengthens (nginx's figure shows how much of it any hop
    # pays here).
    others = [name for name in names if name not in (DIRECT, GATEWAY)]
    checks = []
    pct = {name: compare(results, name, 16)[0] for name in names}
    checks.append(_check(
        f"at 16 connections the gateway keeps at least {MIN_THROUGHPUT_PCT_AT_16:.0f} % of "
        "the direct throughput", {name: f"{pct[name]:.1f} %" for name in names},
        pct[GATEWAY] >= MIN_THROUGHPUT_PCT_AT_16, others))
    for connections, note in ((1, "1 connection: the hop itself"),
                              (16, "16 connections: with queueing")):
        added = {name: compare(results, name, connections)[1] for name in names}
        checks.append(_check(
            f"adds at most {MAX_ADDED_P50_MS:.0f} ms at p50 ({note})",
            {name: f"{added[name]:+.2f} ms" for name in names},
            added[GATEWAY] <= MAX_ADDED_P50_MS, others))
    print(f"Targets for the default gateway, {GATEWAY}; the others beside it for reference")
    print("(nginx: what one well-made proxy hop costs on this machine):")
    for check in checks:
        verdict = "PASS" if check["passed"] else "FAIL"
        beside = ", ".join(f"{name} {check['reference'][name]}" for name in others)
        print(f"  [{verdict}] {check['target']}: {check['value']}")
        print(f"         reference: {beside}")
    if any(m.errors for m in results.values()):
        print()
        print("WARNING: some cases had non-2xx answers or socket errors (see the errors column);")
        print("their figures do not describe successful requests.")
    return checks


# ------------------------------------------------------------------------------------
# Main


def run(args: argparse.Namespace) -> int:
    wrk, nginx = find_tools()
    tmp = Path(tempfile.mkdtemp(prefix="sikkerby-bench-"))
    processes = Processes(tmp)
    try:
        names = ["providers", "gateway", "gateway-httpx", "nginx",
                 *(s.value for s in DOWNSTREAM_SERVICES if s is not ServiceName.providers)]
        ports = dict(zip(names, free_ports(len(names)), strict=True))
        bench_env = base_environment(tmp, ports)
        print("Preparing: keys, migrations (SQLite) and the admin client in a temporary "
              "directory...", flush=True)
        with environment(bench_env):
            shared = prepare(Settings())

        urls = {name: f"http://{HOST}:{ports[name]}" for name in
                ("providers", "gateway", "gateway-httpx", "nginx")}
        processes.start("providers", uvicorn_command(
            APP_FACTORIES[ServiceName.providers], ports["providers"]),
            child_environment(bench_env, shared, ServiceName.providers,
                              SIKKERBY_GATEWAY_URL=urls["gateway"]))
        processes.start("gateway", uvicorn_command(
            APP_FACTORIES[ServiceName.gateway], ports["gateway"]),
            child_environment(bench_env, shared, ServiceName.gateway,
                              SIKKERBY_GATEWAY_FORWARDER="aiohttp"))
        processes.start("gateway-httpx", uvicorn_command(
            APP_FACTORIES[ServiceName.gateway], ports["gateway-httpx"]),
            child_environment(bench_env, shared, ServiceName.gateway,
                              SIKKERBY_PORT=str(ports["gateway-httpx"]),
                              SIKKERBY_GATEWAY_FORWARDER="httpx"))
        start_nginx(processes, nginx, tmp, ports["nginx"], ports["providers"])
        for name in ("providers", "gateway", "gateway-httpx", "nginx"):
            wait_healthy(processes, name, urls[name])

        api = Api(urls["gateway"], bench_env["SIKKERBY_ADMIN_CLIENT_SECRET"])
        provider_id = api.create_provider()
        path = f"/v1/providers/{provider_id}"
        targets = [Target(DIRECT, urls["providers"], None),
                   Target(GATEWAY, urls["gateway"], "gateway"),
                   Target(GATEWAY_HTTPX, urls["gateway-httpx"], "gateway-httpx"),
                   Target(NGINX, urls["nginx"], "nginx")]
        for target in targets:
            check_target(target, path, api.fresh_token(), provider_id)
        pids = {name: child.pid for name, child in processes.children.items()}

        print(f"Benchmark: GET {path} with a bearer token (admin client).")
        print(f"wrk --latency, {args.duration:g} s per case after a {args.warmup:g} s warm-up; "
              f"{args.rounds} round(s), median shown; 1 thread at 1 connection, 2 at 16.")
        print("Every server is one process (uvicorn: one worker; nginx: worker_processes 1),")
        print(f"all on 127.0.0.1, sharing {os.cpu_count()} CPU(s) with wrk itself.")
        print(f"Gateway rate limiting is set out of the way (SIKKERBY_RATE_LIMIT_PER_MINUTE and "
              f"_BURST = {RATE_LIMIT}):")
        print("the bucket is still consulted on every request, it just never refuses.")
        print()

        rounds: dict[tuple[str, int], list[Measurement]] = {}
        for round_no in range(1, args.rounds + 1):
            # Interleaved (each concurrency, then each target) so that drift in the
            # machine's load falls on every target alike rather than on one.
            for connections in CONNECTIONS:
                for target in targets:
                    processes.check_alive()
                    print(f"  round {round_no}/{args.rounds}: {target.name}, "
                          f"{connections} connection(s)...", flush=True)
                    m = measure(wrk, target, path, api.fresh_token(), connections,
                                args.duration, args.warmup, pids)
                    rounds.setdefault((target.name, connections), []).append(m)
        processes.check_alive()
        print()
        results = {key: median_of(ms) for key, ms in rounds.items()}
        checks = report(results, [t.name for t in targets])

        if args.json:
            document = {
                "request": f"GET {path}", "duration_seconds": args.duration,
                "warmup_seconds": args.warmup, "rounds": args.rounds,
                "cpu_count": os.cpu_count(),
                "results": [_without_output(asdict(m)) | {
                    "throughput_pct_of_direct": compare(results, m.target, m.connections)[0],
                    "p50_added_ms": compare(results, m.target, m.connections)[1],
                } for m in results.values()],
                "all_rounds": [asdict(m) for ms in rounds.values() for m in ms],
                "targets": checks,
            }
            out = Path(args.json)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(document, indent=2) + "\n")
            print(f"\nResults written to {args.json}")
        failed = not all(check["passed"] for check in checks)
        return 1 if (args.strict and failed) else 0
    finally:
        processes.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway.run", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=9.0,
                        help="seconds measured per case (default 9)")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of warm-up before each case (default 2)")
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run: 3 s per case, 1 s warm-up, one round")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat the whole interleaved sequence; medians are shown")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a target fails (default: report only)")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.rounds = 3.0, 1.0, 1
    if not 1 <= args.duration <= MAX_DURATION_SECONDS:
        parser.error(f"--duration must be between 1 and {MAX_DURATION_SECONDS} seconds")
    if not 1 <= args.warmup <= 30:
        parser.error("--warmup must be between 1 and 30 seconds")
    if not 1 <= args.rounds <= 10:
        parser.error("--rounds must be between 1 and 10")
    return args


def main(argv: list[str] | None = None) -> int:
    return bench_main(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
