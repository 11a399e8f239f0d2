"""Side-by-side HTTP benchmark, rounds interleaved, with wrk on loopback.

Compares, in one run:
  (1) service       - this service exactly as the prod overlay configures it (its rendered ConfigMap: sampler,
                      access-log setting, OTLP export, the image's JSON log format), the OTLP endpoint pointed at
                      a local sink (otlp_sink.py); every request carries a sampled traceparent with a
                      random trace id, as the Gateway sends it (wrk_report.lua)
  (2) fastapi       - FastAPI on uvicorn (one worker, uvloop + httptools) with a prometheus_client counter and
                      histogram in a pure ASGI middleware: the fair baseline (baseline_asgi_app.py)
  (3) design        - the design's snippet: the same on Starlette's BaseHTTPMiddleware (baseline_app.py)
  (4) telemetry off - (1) with OTEL_SDK_DISABLED=true
  (5) bare          - a bare ASGI app on Granian: the ceiling

Each server is pinned to CPU 0 and wrk to CPU 1 (taskset), so the two never compete for a core; the sink runs on
CPU 1 too (it only receives batches). Every server writes its logs to /dev/null. Prints req/s and p50/p99 latency
per endpoint (medians over the rounds), RSS after the run, and the ratios the performance issue sets targets for:
(1)/(2) on both endpoints with the p99s, and the telemetry overhead 1 - (1)/(4).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from gitops.render import render

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
VENV_BIN = Path(sys.executable).parent
ENDPOINTS = {
    "GET /api/v1/hello": ("/api/v1/hello?name=World", ""),
    "POST /api/v1/hello": ("/api/v1/hello", '{"name":"World"}'),
}


@dataclass
class Config:
    key: str
    label: str
    argv: list[str]
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    results: dict[str, list[dict[str, float]]] = field(default_factory=dict)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prod_settings(sink_port: int) -> dict[str, str]:
    """The environment the prod overlay gives the container: its ConfigMap as rendered, the image's log format,
    and the OTLP endpoint pointed at the local sink. Not APP_SECRETS_DIR (no Secret here)."""
    (config_map,) = [
        o for o in render(REPO / "overlays" / "prod", REPO)[1]
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("microservice-demo-")
    ]  # fmt: skip
    settings = {k: v for k, v in config_map["data"].items() if k != "APP_SECRETS_DIR"}
    settings["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
    return {"APP_LOG_FORMAT": "json", **settings}


def configs(sink_port: int) -> list[Config]:
    prod = prod_settings(sink_port)
    uvicorn = [str(VENV_BIN / "uvicorn"), "--app-dir", str(BENCH), "--port", "{port}", "--workers", "1"]
    return [
        Config("1", "service, the prod overlay's settings", [str(VENV_BIN / "microservice-demo")], prod),
        Config("2", "FastAPI + uvicorn, pure ASGI prometheus_client", [*uvicorn, "baseline_asgi_app:app"], {}),
        Config("3", "the design's snippet (BaseHTTPMiddleware)", [*uvicorn, "baseline_app:app"], {}),
        Config(
            "4", "service, telemetry off", [str(VENV_BIN / "microservice-demo")], {**prod, "OTEL_SDK_DISABLED": "true"}
        ),
        Config(
            "5",
            "bare ASGI on Granian (ceiling)",
            [
                str(VENV_BIN / "granian"),
                "--interface",
                "asgi",
                "--working-dir",
                str(BENCH),
                "--port",
                "{port}",
                "bare_app:app",
            ],
            {},
        ),
    ]


def start_sink() -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    sink = subprocess.Popen(
        ["taskset", "-c", "1", sys.executable, str(BENCH / "otlp_sink.py"), str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return sink, port
        except httpx.TransportError:
            time.sleep(0.05)
    raise SystemExit("the OTLP sink did not start")


def start(config: Config) -> None:
    config.port = free_port()
    argv = [a.replace("{port}", str(config.port)) for a in config.argv]
    env = {**os.environ, "APP_PORT": str(config.port), **config.env}
    config.process = subprocess.Popen(
        ["taskset", "-c", "0", *argv], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{config.port}/api/v1/hello", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit(f"{config.label} did not start")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (Granian serves from a worker process)."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(p) for p in children.read_text().split()]
    for p in pids:
        for line in Path(f"/proc/{p}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def run_wrk(config: Config, endpoint: str, seconds: int, connections: int) -> dict[str, float]:
    path, body = ENDPOINTS[endpoint]
    out = subprocess.run(
        [
            "taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
            "-s", str(BENCH / "wrk_report.lua"), f"http://127.0.0.1:{config.port}{path}",
        ],
        env={**os.environ, "WRK_BODY": body, "WRK_TRACEPARENT": "random"},
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    line = next(line for line in out.splitlines() if line.startswith("WRK_JSON "))
    raw = json.loads(line.removeprefix("WRK_JSON "))
    if raw["socket_errors"] or raw["non_2xx"]:
        raise SystemExit(f"{config.label} {endpoint}: errors during the run: {raw}")
    return {
        "rps": raw["requests"] / (raw["duration_us"] / 1e6),
        "p50_ms": raw["p50_us"] / 1000,
        "p99_ms": raw["p99_us"] / 1000,
    }


def median(config: Config, endpoint: str, key: str) -> float:
    return statistics.median(r[key] for r in config.results[endpoint])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5, help="duration of one wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian package wrk; bench/run installs it when run as root)")

    sink, sink_port = start_sink()
    all_configs = configs(sink_port)
    try:
        for config in all_configs:
            start(config)
            for endpoint in ENDPOINTS:  # warm-up, not recorded
                run_wrk(config, endpoint, 1, args.connections)
        for round_number in range(1, args.rounds + 1):
            for config in all_configs:
                for endpoint in ENDPOINTS:
                    result = run_wrk(config, endpoint, args.seconds, args.connections)
                    config.results.setdefault(endpoint, []).append(result)
            print(f"round {round_number}/{args.rounds} done", file=sys.stderr)
        memory = {c.key: rss_mb(c.process.pid) for c in all_configs if c.process}
        exports = int(httpx.get(f"http://127.0.0.1:{sink_port}/").text)
    finally:
        sink.terminate()
        for config in all_configs:
            if config.process and config.process.poll() is None:
                config.process.send_signal(signal.SIGTERM)
                config.process.wait(15)

    print(f"\nwrk -t1 -c{args.connections}, {args.seconds} s per run, {args.rounds} interleaved rounds, medians")
    print(f"{'config':<52} {'endpoint':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'RSS MB':>7}")
    for config in all_configs:
        for endpoint in ENDPOINTS:
            print(
                f"({config.key}) {config.label:<48} {endpoint:<20} {median(config, endpoint, 'rps'):>9.0f} "
                f"{median(config, endpoint, 'p50_ms'):>8.2f} {median(config, endpoint, 'p99_ms'):>8.2f} "
                f"{memory[config.key]:>7.1f}"
            )
    service, fastapi, design, no_telemetry, _ = all_configs
    print(f"\nthe OTLP sink received {exports} exports from (1)")
    print()
    for endpoint in ENDPOINTS:
        vs_fastapi = median(service, endpoint, "rps") / median(fastapi, endpoint, "rps")
        vs_design = median(service, endpoint, "rps") / median(design, endpoint, "rps")
        overhead = 1 - median(service, endpoint, "rps") / median(no_telemetry, endpoint, "rps")
        p99_ratio = median(service, endpoint, "p99_ms") / median(fastapi, endpoint, "p99_ms")
        print(
            f"{endpoint:<20} (1)/(2) req/s = {vs_fastapi:.2f}  p99 (1)/(2) = {p99_ratio:.2f}  "
            f"(1)/(3) req/s = {vs_design:.2f}  telemetry overhead 1-(1)/(4) = {overhead:.0%}"
        )
    if args.json:
        args.json.write_text(json.dumps({c.key: {"label": c.label, **c.results} for c in all_configs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
