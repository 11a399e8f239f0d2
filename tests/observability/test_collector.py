"""Alloy's configuration against the facts it depends on: the service's log lines and span marker, the latency SLO's
threshold, and what tail sampling needs. No Alloy runs here (no offline build), so these read the configuration's
text; the component and argument names are Alloy v1.18.1's (docs/sources/reference/components@v1.18.1, the chart's
appVersion), all of them generally available, the stability level the chart runs at."""

from __future__ import annotations

import io
import json
import re

from conftest import Stack
from loguru import logger

from microservice_demo.logs import LOG_LINKED_ATTRIBUTE, configure_logging
from microservice_demo.telemetry import BASELINE_ATTRIBUTE, BASELINE_RATIO, SLOW_SECONDS


def _config(stack: Stack) -> str:
    content: str = stack.values("alloy")["alloy"]["configMap"]["content"]
    return content


def _block(config: str, header: str) -> str:
    """The text of the first block that starts with header, braces balanced."""
    start = config.index(header)
    depth = 0
    for end in range(config.index("{", start), len(config)):
        depth += {"{": 1, "}": -1}.get(config[end], 0)
        if depth == 0:
            return config[start : end + 1]
    raise AssertionError(f"{header}: unbalanced")


def test_tail_sampling_keeps_every_trace_a_log_line_or_an_error_points_to(stack: Stack) -> None:
    sampling = _block(_config(stack), 'otelcol.processor.tail_sampling "traces"')
    assert re.search(rf'boolean_attribute \{{\s*key\s*= "{re.escape(LOG_LINKED_ATTRIBUTE)}"\s*value = true', sampling)
    assert re.search(r'status_code \{\s*status_codes = \["ERROR"\]', sampling)
    assert re.search(
        r'key\s*= "http.status_code"\s*values\s*= \["5\[0-9\]\[0-9\]"\]\s*enabled_regex_matching = true', sampling
    )
    assert "drop {" not in sampling and "invert_match" not in sampling, "a veto would break the promise"


def test_tail_sampling_keeps_every_trace_slower_than_the_latency_slo(stack: Stack) -> None:
    threshold_ms = int(re.search(r"threshold_ms = (\d+)", _block(_config(stack), "latency {"))[1])  # type: ignore[index]
    slo_rules = "\n".join(rule.get("expr", "") for rule in stack.rules())
    (bucket,) = set(re.findall(r'http_server_request_duration_seconds_bucket\{[^}]*le="([0-9.]+)"', slo_rules))
    assert threshold_ms == round(float(bucket) * 1000) == round(SLOW_SECONDS * 1000)


def test_the_service_sends_what_tail_sampling_keeps_and_marks_its_baseline(stack: Stack) -> None:
    """The service exports only the spans of traces these policies keep (telemetry.ExportWhatTailSamplingKeeps):
    its baseline tenth is kept by the attribute it marks, at the collector's own share."""
    sampling = _block(_config(stack), 'otelcol.processor.tail_sampling "traces"')
    assert re.search(rf'boolean_attribute \{{\s*key\s*= "{re.escape(BASELINE_ATTRIBUTE)}"\s*value = true', sampling)
    percentage = int(re.search(r"sampling_percentage = (\d+)", sampling)[1])  # type: ignore[index]
    assert percentage == round(BASELINE_RATIO * 100)


def test_every_span_of_a_trace_reaches_the_one_alloy(stack: Stack) -> None:
    values = stack.values("alloy")
    assert values["controller"] == {"type": "deployment", "replicas": 1}
    assert "autoscaling" not in values


def test_a_log_entry_takes_the_time_written_in_the_line(stack: Stack) -> None:
    """stage.timestamp reads the field the service writes, in a format Go's RFC3339Nano layout parses: four-digit
    year, "T", fraction of up to nine digits, and a zone ("Z")."""
    process = _block(_config(stack), 'loki.process "service"')
    assert re.search(r'stage.json \{\s*expressions = \{[^}]*timestamp = "timestamp"', process)
    assert re.search(r'stage.timestamp \{\s*source = "timestamp"\s*format = "RFC3339Nano"', process)
    stream = io.StringIO()
    configure_logging("INFO", "json", stream)
    logger.info("a line")
    line = json.loads(stream.getvalue())
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)", line["timestamp"])
