"""A stand-in for the platform Gateway's Envoy proxy, for the end-to-end tests: it forwards the service's route and
exports what an Envoy Gateway proxy exports for it, named and labelled the same way.

What it copies from Envoy Gateway v1.9.0 and Envoy (the facts the SLO rules rely on, cited in
base/observability/rules/microservice-demo-slo.prometheusrule.yaml and base/networking/envoyproxy-public.yaml):
- one cluster per HTTPRoute rule, its stats named by the EnvoyProxy's clusterStatName
  "httproute/<namespace>/<route>/rule/<n>"; rule 0 is PathPrefix /api, rule 1 PathPrefix /;
- /stats/prometheus with Envoy's tag extraction: envoy_cluster_upstream_rq_xx{envoy_cluster_name,
  envoy_response_code_class} and envoy_cluster_upstream_rq_total{envoy_cluster_name}, counters without "_total"
  added, each created on its first use (Envoy Gateway turns on deferred stat creation);
- when no upstream can be reached the proxy answers 503 itself ("no healthy upstream", or a failed connection):
  counted in upstream_rq_xx class 5, not in upstream_rq_total, which counts requests sent to an upstream.
"""

from __future__ import annotations

import http.server
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

NO_HEALTHY_UPSTREAM = b"no healthy upstream"


@dataclass
class EdgeStats:
    """The proxy's cluster counters, keyed by cluster name (and response class)."""

    responses: Counter[tuple[str, str]] = field(default_factory=Counter)
    sent: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, cluster: str, status: int, reached_upstream: bool) -> None:
        with self.lock:
            self.responses[(cluster, str(status // 100))] += 1
            if reached_upstream:
                self.sent[cluster] += 1

    def prometheus_text(self) -> str:
        with self.lock:
            lines = ["# TYPE envoy_cluster_upstream_rq_xx counter"]
            lines += [
                f'envoy_cluster_upstream_rq_xx{{envoy_response_code_class="{cls}",envoy_cluster_name="{name}"}} {n}'
                for (name, cls), n in sorted(self.responses.items())
            ]
            lines.append("# TYPE envoy_cluster_upstream_rq_total counter")
            lines += [
                f'envoy_cluster_upstream_rq_total{{envoy_cluster_name="{name}"}} {n}' for name, n in self.sent.items()
            ]
        return "\n".join(lines) + "\n"


@dataclass
class EdgeProxy:
    """Routes one environment's hostname-less traffic to ``upstream`` (None: no endpoint is ready)."""

    namespace: str
    upstream: str | None
    stats: EdgeStats = field(default_factory=EdgeStats)
    url: str = ""

    def cluster(self, path: str) -> str:
        rule = 0 if path == "/api" or path.startswith("/api/") else 1
        return f"httproute/{self.namespace}/microservice-demo/rule/{rule}"


def _handler(proxy: EdgeProxy, client: httpx.Client) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            if self.path == "/stats/prometheus":
                self._answer(200, proxy.stats.prometheus_text().encode(), "text/plain; version=0.0.4")
                return
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def _forward(self) -> None:
            cluster = proxy.cluster(self.path.split("?", 1)[0])
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if proxy.upstream is None:
                proxy.stats.count(cluster, 503, reached_upstream=False)
                self._answer(503, NO_HEALTHY_UPSTREAM, "text/plain")
                return
            try:
                response = client.request(
                    self.command, proxy.upstream + self.path, content=body, headers=self._forwarded_headers()
                )
            except httpx.TransportError:
                proxy.stats.count(cluster, 503, reached_upstream=False)
                self._answer(503, b"upstream connect error or disconnect/reset before headers", "text/plain")
                return
            proxy.stats.count(cluster, response.status_code, reached_upstream=True)
            self._answer(response.status_code, response.content, response.headers.get("content-type", "text/plain"))

        def _forwarded_headers(self) -> dict[str, str]:
            skip = {"host", "content-length", "connection"}
            return {k: v for k, v in self.headers.items() if k.lower() not in skip}

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    return Handler


@contextmanager
def running(proxy: EdgeProxy) -> Iterator[EdgeProxy]:
    """Serve ``proxy`` on a loopback port until the block ends; its address in ``proxy.url``."""
    with httpx.Client(timeout=5) as client:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy, client))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        proxy.url = f"http://127.0.0.1:{server.server_port}"
        try:
            yield proxy
        finally:
            server.shutdown()
            server.server_close()
