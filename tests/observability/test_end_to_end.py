"""End to end on loopback, all real processes: the service on Granian behind a stand-in for the Gateway's Envoy
proxy (edge_proxy.py: Envoy Gateway's stat names and labels); Prometheus 3 (Debian's) scraping both every second
with the rules extracted from the PrometheusRules; Alertmanager (Debian's) with the repository's routing, its
Slack URL pointed at a local HTTP sink. Errors injected through the service's fault-injection API must page;
healing must resolve the symptom alert and deliver its resolved notice. With the service down and the Gateway
answering 503, the Gateway's series alone must page.

Only the timings of the routing are shortened (group_wait, group_interval, repeat_interval: seconds instead of
minutes), the secrets are files in a temporary folder, and the SMTP relay is a closed port: the routes, receivers,
templates and inhibitions are the repository's."""

from __future__ import annotations

import contextlib
import http.server
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import yaml
from conftest import PLATFORM_METRICS, Stack, require_tool, start_alertmanager, wait_ready, wait_until
from edge_proxy import EdgeProxy, running
from promql_selectors import expand, selectors

pytestmark = pytest.mark.process

TOKEN = "end-to-end-test-token-0123456789"
NAMESPACE = "microservice-demo-prod"
EDGE_POD = "envoy-envoy-gateway-system-public-5d9c7b6f4-abcde"
SECRETS = "/etc/alertmanager/secrets/alertmanager-notifications/"


class _Sink(http.server.BaseHTTPRequestHandler):
    """Stands in for Slack's incoming webhooks (one per channel, told apart by path) and the heartbeat service:
    keeps every JSON body posted to it, with the path it came to."""

    received: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *_: Any) -> None:
        pass


@dataclass
class Traffic:
    """Steady GET /api/v1/hello from background threads; more threads, more requests."""

    url: str
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def add(self, count: int, pause: float) -> None:
        for _ in range(count):
            thread = threading.Thread(target=self._run, args=(pause,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def _run(self, pause: float) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self.stop.is_set():
                with contextlib.suppress(httpx.TransportError):
                    client.get("/api/v1/hello")
                time.sleep(pause)

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


@dataclass
class Loop:
    service: Any  # None when the service is down
    prometheus: httpx.Client
    traffic: Traffic
    sink: list[tuple[str, dict[str, Any]]]
    logs: dict[str, Path]

    def query(self, expression: str) -> list[dict[str, Any]]:
        response = self.prometheus.get("/api/v1/query", params={"query": expression})
        assert response.status_code == 200, f"{expression}: {response.text}"
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def alerts(self, name: str, state: str) -> list[dict[str, str]]:
        found = self.prometheus.get("/api/v1/alerts").json()["data"]["alerts"]
        return [a["labels"] for a in found if a["labels"]["alertname"] == name and a["state"] == state]

    def notices(self, webhook: str, title: str) -> list[dict[str, Any]]:
        """The Slack attachments with this title posted to the webhook of "page" or "ticket"."""
        return [
            attachment
            for path, message in list(self.sink)
            if path == f"/slack/{webhook}"
            for attachment in message.get("attachments", [])
            if attachment.get("title") == title
        ]

    def wait(self, what: str, condition: Callable[[], Any], timeout: float) -> Any:
        return wait_until(what, condition, timeout, self._details, interval=1)

    def _details(self) -> str:
        logs = "\n".join(f"--- {name}\n{path.read_text()[-3000:]}" for name, path in self.logs.items())
        return f"sink: {self.sink}\n{logs}"


def _alertmanager_config(stack: Stack, folder: Path, sink_url: str, closed_port: int) -> Path:
    for webhook in ("page", "ticket"):
        (folder / f"slack-{webhook}-url").write_text(f"{sink_url}/slack/{webhook}")
    (folder / "heartbeat-url").write_text(f"{sink_url}/heartbeat")
    (folder / "smtp-password").write_text("not-a-real-password")
    text = stack.alertmanager_config().replace(SECRETS, f"{folder}/")
    config = yaml.safe_load(text)
    config["global"]["smtp_smarthost"] = f"127.0.0.1:{closed_port}"

    def shorten(route: dict[str, Any]) -> None:
        for timing in ("group_wait", "group_interval", "repeat_interval"):
            if timing in route:
                route[timing] = "1s" if timing != "repeat_interval" else "1h"
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    path = folder / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _prometheus_config(
    folder: Path, rule_files: dict[str, Path], alertmanager_port: int, service_port: int | None, edge: EdgeProxy
) -> Path:
    service_job = {
        # What the ServiceMonitor gives in the cluster: job = the Service's name, plus target labels.
        "job_name": "microservice-demo",
        "static_configs": [
            {
                "targets": [f"127.0.0.1:{service_port}"],
                "labels": {"namespace": NAMESPACE, "pod": "microservice-demo-0", "service": "microservice-demo"},
            }
        ],
    }
    edge_job = {
        # What the PodMonitor envoy-proxies gives: job <namespace>/<name>, the proxy pod's namespace and name.
        "job_name": "envoy-gateway-system/envoy-proxies",
        "metrics_path": "/stats/prometheus",
        "static_configs": [
            {
                "targets": [edge.url.removeprefix("http://")],
                "labels": {"namespace": "envoy-gateway-system", "pod": EDGE_POD, "container": "envoy"},
            }
        ],
    }
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files.values()],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]},
        "scrape_configs": [edge_job] if service_port is None else [service_job, edge_job],
    }
    path = folder / "prometheus.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextlib.contextmanager
def _monitoring(
    stack: Stack,
    rule_files: dict[str, Path],
    folder: Path,
    free_port: Callable[[], int],
    service: Any | None,
    edge: EdgeProxy,
) -> Iterator[Loop]:
    """Alertmanager (its Slack URL a local sink) and Prometheus scraping the edge proxy, and the service if given;
    traffic through the proxy."""
    processes: list[subprocess.Popen[bytes]] = []
    _Sink.received = []
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    traffic = Traffic(edge.url)
    try:
        am_port, prom_port = free_port(), free_port()
        logs = {"alertmanager": folder / "alertmanager.log", "prometheus": folder / "prometheus.log"}
        am_config = _alertmanager_config(stack, folder, f"http://127.0.0.1:{sink.server_port}", free_port())
        processes.append(start_alertmanager(am_config, folder, am_port))
        service_port = None if service is None else int(service.url.rsplit(":", 1)[1])
        prom_config = _prometheus_config(folder, rule_files, am_port, service_port, edge)
        processes.append(
            subprocess.Popen(
                [
                    require_tool("prometheus"),
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={folder / 'prometheus'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                stdout=logs["prometheus"].open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        wait_ready(f"http://127.0.0.1:{prom_port}/-/ready", logs["prometheus"])
        traffic.add(2, 0.05)  # about 40 requests a second
        if service is not None:
            logs["service"] = service.log
        with httpx.Client(base_url=f"http://127.0.0.1:{prom_port}", timeout=10) as prometheus:
            loop = Loop(service, prometheus, traffic, _Sink.received, logs)
            loop.wait(
                "the edge is scraped", lambda: loop.query('up{job="envoy-gateway-system/envoy-proxies"} == 1'), 30
            )
            yield loop
    finally:
        traffic.close()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        sink.shutdown()


@pytest.fixture(scope="module")
def loop(
    stack: Stack,
    rule_files: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
    free_port: Callable[[], int],
    start_module_service: Callable[..., Any],
) -> Iterator[Loop]:
    """The service behind the stand-in edge proxy, both scraped."""
    env = {"APP_ADMIN_TOKEN": TOKEN, "APP_FAULT_INJECTION": "true"}
    with (
        start_module_service(env) as service,
        running(EdgeProxy(NAMESPACE, service.url)) as edge,
        _monitoring(stack, rule_files, tmp_path_factory.mktemp("end-to-end"), free_port, service, edge) as loop,
    ):
        loop.wait("the service is scraped", lambda: loop.query('up{job="microservice-demo"} == 1'), 30)
        yield loop


def test_every_dashboard_query_runs_on_prometheus_and_the_services_have_data(loop: Loop, stack: Stack) -> None:
    """Each Prometheus query of the dashboard, variables filled in, runs on the real Prometheus; those that read
    only the service's own series or the per-second SLI records return data once traffic has flowed."""
    recorded_slowly = {
        rule["record"]
        for groups in stack.prometheus_rules().values()
        for group in groups
        if group.get("interval")  # evaluated every few minutes: not yet in the first seconds
        for rule in group["rules"]
        if "record" in rule
    }
    queries = [
        target["expr"]
        for panel in stack.dashboard()["panels"]
        for target in panel.get("targets", [])
        if target["datasource"]["type"] == "prometheus"
    ]
    loop.wait("SLI records", lambda: loop.query("namespace:microservice_demo_api_errors:ratio_rate5m"), 30)
    time.sleep(5)  # a few scrapes, so rate() over them has two samples and more
    for query in queries:
        result = loop.query(expand(query).replace("[1m]", "[30s]"))
        metrics = {s.metric for s in selectors(query)}
        if not metrics & (set(PLATFORM_METRICS) - {"up"} | recorded_slowly):
            assert result, f"no data for {query}"


@pytest.mark.timeout(480)  # the symptom alert waits 2 minutes by design; the rest takes about one more
def test_injected_errors_page_and_healing_resolves_the_symptom_alert(loop: Loop) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    injected = httpx.post(
        loop.service.url + "/admin/chaos", json={"error_rate": 0.1, "duration_seconds": 300}, headers=auth
    )
    assert injected.status_code == 200, injected.text

    # 10 % of API requests fail: far above 14.4 x the 0.1 % budget on both windows, so the page fires at once.
    (page,) = loop.wait(
        "the availability page fires in Prometheus",
        lambda: [
            a for a in loop.alerts("MicroserviceDemoAvailabilityBudgetBurn", "firing") if a["severity"] == "critical"
        ],
        90,
    )
    assert page == {
        "alertname": "MicroserviceDemoAvailabilityBudgetBurn",
        "namespace": NAMESPACE,
        "severity": "critical",
        "slo": "availability",
    }
    (notice, *_) = loop.wait(
        "the page reaches the page channel",
        lambda: loop.notices(
            "page",
            f"[FIRING] MicroserviceDemoAvailabilityBudgetBurn in {NAMESPACE} (severity=critical)",
        ),
        60,
    )
    assert "docs/runbooks/availability-budget-burn.md" in notice["text"]
    assert f"In {NAMESPACE}, the 5xx ratio of API requests at the Gateway is" in notice["text"]

    # The symptom alert waits 2 minutes (`for: 2m`) before it fires; a warning goes to the ticket channel.
    loop.wait(
        "the high-error-rate alert fires",
        lambda: loop.notices("ticket", f"[FIRING] MicroserviceDemoHighErrorRate in {NAMESPACE} (severity=warning)"),
        200,
    )

    healed = httpx.delete(loop.service.url + "/admin/chaos", headers=auth)
    assert healed.status_code == 200
    assert healed.json()["error_rate"] == 0.0
    loop.traffic.add(4, 0.02)  # more successful requests dilute the errors still in the 2-minute window sooner
    loop.wait(
        "the high-error-rate alert resolves and its resolved notice arrives",
        lambda: loop.notices("ticket", f"[RESOLVED] MicroserviceDemoHighErrorRate in {NAMESPACE} (severity=warning)"),
        150,
    )
    assert not loop.alerts("MicroserviceDemoHighErrorRate", "firing")


@pytest.fixture
def service_down(
    stack: Stack, rule_files: dict[str, Path], tmp_path: Path, free_port: Callable[[], int]
) -> Iterator[Loop]:
    """No service at all: the edge proxy's upstream is a closed port, as when every pod has crashed while the
    endpoints still list them. Prometheus scrapes only the edge."""
    with (
        running(EdgeProxy(NAMESPACE, f"http://127.0.0.1:{free_port()}")) as edge,
        _monitoring(stack, rule_files, tmp_path, free_port, None, edge) as loop,
    ):
        yield loop


@pytest.mark.timeout(180)
def test_an_outage_before_the_service_pages_from_the_gateway(service_down: Loop) -> None:
    """The service records nothing (it is down); the Gateway answers 503 and counts it, and that burns the
    availability budget fast enough to page, and the page reaches the page channel."""
    loop = service_down
    (page,) = loop.wait(
        "the availability page fires in Prometheus",
        lambda: [
            a for a in loop.alerts("MicroserviceDemoAvailabilityBudgetBurn", "firing") if a["severity"] == "critical"
        ],
        90,
    )
    assert page["namespace"] == NAMESPACE
    assert loop.query('http_server_request_duration_seconds_count{job="microservice-demo"}') == []
    (notice, *_) = loop.wait(
        "the page reaches the page channel",
        lambda: loop.notices(
            "page",
            f"[FIRING] MicroserviceDemoAvailabilityBudgetBurn in {NAMESPACE} (severity=critical)",
        ),
        60,
    )
    assert f"In {NAMESPACE}, the 5xx ratio of API requests at the Gateway is 100%" in notice["text"]
