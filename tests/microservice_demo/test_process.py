"""The service as it really runs: the launcher starting Granian on a loopback port, spoken to over HTTP."""

from __future__ import annotations

import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

pytestmark = pytest.mark.process

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_FACTORY = "microservice_demo.app:create_app"
TOKEN = "process-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_health_and_readiness_once_started(start_service: Callable[..., Any]) -> None:
    with start_service() as server:
        assert server.get("/healthz").json()["status"] == "ok"
        assert server.get("/ready").json() == {"status": "serving"}
        messages = [line["message"] for line in server.lines()]
        assert any(m.startswith("Listening at: http://127.0.0.1:") for m in messages)
        assert any("ready (environment=local, telemetry=on)" in m for m in messages)


def test_metrics_after_traffic_use_route_templates(start_service: Callable[..., Any]) -> None:
    with start_service() as server:
        for name in ("a", "b"):
            server.get("/api/v1/hello", params={"name": name})
        httpx.post(server.url + "/api/v1/hello", json={"name": "c"})
        server.get("/api/v1/info")
        metrics = server.get("/metrics").text
    routes = {
        part.split('"')[1]
        for line in metrics.splitlines()
        if line.startswith("http_server_request_duration_seconds_count")
        for part in line.split(",")
        if part.startswith("http_route=")
    }
    assert routes == {"/api/v1/hello", "/api/v1/info"}
    assert 'le="0.2"' in metrics


def test_series_stay_bounded_after_1000_unknown_paths(start_service: Callable[..., Any]) -> None:
    def label_sets(text: str) -> set[str]:
        prefix = "http_server_request_duration_seconds_count{"
        return {line[len(prefix) : line.index("}")] for line in text.splitlines() if line.startswith(prefix)}

    with start_service({"APP_ACCESS_LOG": "false"}) as server, httpx.Client(base_url=server.url) as client:
        client.get("/api/v1/hello")
        before = label_sets(client.get("/metrics").text)
        for i in range(1000):
            assert client.get(f"/unknown/{i}/path-{i}?q={i}").status_code == 404
        after_text = client.get("/metrics").text
    after = label_sets(after_text)
    assert "/unknown/" not in after_text
    (added,) = after - before  # every unknown path shares one series: GET, 404, no http.route
    assert 'http_response_status_code="404"' in added
    assert 'http_route=""' in added  # the exporter writes the absent attribute as an empty label


def test_traceparent_reaches_the_access_log(start_service: Callable[..., Any]) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    with start_service() as server:
        response = server.get("/api/v1/hello", headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"})
        assert response.status_code == 200
        time.sleep(0.2)
        (line,) = [line for line in server.access_lines() if line["http_route"] == "/api/v1/hello"]
    assert line["trace_id"] == trace_id
    assert line["http_status"] == 200


def _shutdown_budget_seconds() -> float:
    """What the Deployment leaves Granian after SIGTERM: the grace period less the preStop sleep before it."""
    deployment = yaml.safe_load((REPO_ROOT / "base" / "microservice-demo" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return float(pod["terminationGracePeriodSeconds"] - container["lifecycle"]["preStop"]["sleep"]["seconds"])


def test_sigterm_lets_slow_requests_finish_then_exits_0(start_service: Callable[..., Any]) -> None:
    """SIGTERM as the kubelet sends it after the preStop sleep: Granian's own handling, nothing of the service's."""
    with start_service({"APP_ADMIN_TOKEN": TOKEN, "APP_FAULT_INJECTION": "true"}) as server:
        httpx.post(server.url + "/admin/chaos", json={"latency_ms": 2000}, headers=AUTH).raise_for_status()
        results: list[int] = []

        def slow_request() -> None:
            results.append(server.get("/api/v1/hello").status_code)

        threads = [threading.Thread(target=slow_request) for _ in range(8)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)  # all eight are in flight, each waiting out its injected 2 s
        server.process.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        refused_while_in_flight = False
        while time.monotonic() - signalled < 1.5:  # Granian stops accepting at once
            try:
                httpx.get(server.url + "/ready", timeout=1)
            except httpx.ConnectError:
                refused_while_in_flight = all(thread.is_alive() for thread in threads)
                break
            except httpx.TransportError:  # accepted by the kernel as the listener closed: not served either
                continue
            time.sleep(0.05)
        for thread in threads:
            thread.join(15)
        exit_code = server.process.wait(_shutdown_budget_seconds())
        stopped_after = time.monotonic() - signalled
        messages = [line["message"] for line in server.lines()]

        assert refused_while_in_flight, "new connections should be refused while the slow requests finish"
        assert results == [200] * 8
        assert exit_code == 0
        assert stopped_after < 5
        # The lifespan shutdown (readiness 503, telemetry flushed) runs once the last request has been answered.
        last_answer = max(i for i, m in enumerate(messages) if m == "GET /api/v1/hello 200")
        assert messages.index("shutting down: readiness is now 503") > last_answer
        assert messages[-1] == "Granian shutdown completed, see ya!"


def test_bad_setting_stops_before_binding(free_port: Callable[[], int]) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "microservice_demo"],
        cwd=REPO_ROOT,
        env={**os.environ, "APP_PORT": str(port), "APP_LOG_FORMAT": "yaml"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["invalid setting APP_LOG_FORMAT='yaml': Input should be 'json' or 'text'"]
    assert "Listening" not in result.stdout + result.stderr


def test_plain_granian_serves_the_factory(start_service: Callable[..., Any]) -> None:
    granian = str(Path(sys.executable).with_name("granian"))
    argv = [granian, "--interface", "asgi", "--loop", "uvloop", "--factory", "--port", "{port}", APP_FACTORY]
    with start_service(argv=argv) as server:
        assert server.get("/api/v1/hello").json() == {"message": "Hello, World!"}


def test_reload_mode_serves(start_service: Callable[..., Any]) -> None:
    with start_service(argv=[sys.executable, "-m", "microservice_demo", "--reload"]) as server:
        assert server.get("/healthz").status_code == 200


class _OtlpReceiver(http.server.BaseHTTPRequestHandler):
    """Accepts OTLP/HTTP trace exports on loopback and keeps the decoded requests."""

    received: ClassVar[list[ExportTraceServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            self.received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def test_spans_are_exported_over_otlp_when_an_endpoint_is_set(start_service: Callable[..., Any]) -> None:
    """As the base configures it (no access line): the span of a trace in the service's baseline tenth is sent,
    an ordinary one outside it is not (telemetry.ExportWhatTailSamplingKeeps)."""
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OtlpReceiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    trace_id, not_sent = "5b8efff798038103" + "0000000000000001", "5b8efff798038103" + "ffffffffffffffff"
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "APP_ACCESS_LOG": "false",
    }
    try:
        with start_service(env) as server:
            server.get("/api/v1/hello", headers={"traceparent": f"00-{not_sent}-eee19b7ec3c1b174-01"})
            server.get("/api/v1/hello", headers={"traceparent": f"00-{trace_id}-eee19b7ec3c1b174-01"})
            deadline = time.monotonic() + 10
            while not _OtlpReceiver.received and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        receiver.shutdown()
    spans = [
        (span, resource_spans.resource)
        for request in _OtlpReceiver.received
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]
    (span, resource) = next((s, r) for s, r in spans if s.trace_id.hex() == trace_id)
    assert not [s for s, _ in spans if s.trace_id.hex() == not_sent]
    assert span.name == "GET /api/v1/hello"
    assert span.kind == span.SPAN_KIND_SERVER
    resource_attributes = {a.key: a.value.string_value for a in resource.attributes}
    assert resource_attributes["service.name"] == "microservice-demo"


def _verify(url: str, image: str, timeout: str = "5") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "microservice_demo.verify", "--url", url, "--expect-image", image, "--timeout", timeout],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_the_deployment_check_passes_when_the_expected_image_runs(start_service: Callable[..., Any]) -> None:
    image = "ghcr.io/example/microservice-demo:1.0.0@sha256:" + "b" * 64
    with start_service({"APP_IMAGE": image}) as server:
        result = _verify(server.url, image)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"deployment check passed: {server.url} is ready and runs {image}"


def test_the_deployment_check_fails_on_another_image(start_service: Callable[..., Any]) -> None:
    with start_service({"APP_IMAGE": "ghcr.io/example/microservice-demo:old"}) as server:
        result = _verify(server.url, "ghcr.io/example/microservice-demo:new", timeout="1")
    assert result.returncode == 1
    assert (
        "reports image 'ghcr.io/example/microservice-demo:old', expected 'ghcr.io/example/microservice-demo:new'"
        in (result.stderr)
    )


def test_the_deployment_check_fails_when_nothing_answers(free_port: Callable[[], int]) -> None:
    result = _verify(f"http://127.0.0.1:{free_port()}", "any", timeout="1")
    assert result.returncode == 1
    assert "ConnectError" in result.stderr
    assert "gave up after 1 s" in result.stderr
