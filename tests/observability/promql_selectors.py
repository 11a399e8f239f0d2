"""The metric selectors of a PromQL expression, read by a real PromQL parser (promql-parser, the Rust crate that
GreptimeDB uses, through its Python binding), and Grafana's template variables expanded first."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import promql_parser

# What Grafana puts in place of its variables before it sends a query; any value of the right type parses the same.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "30s",
    "$__range": "1h",
    "$namespace": "microservice-demo-prod",
}
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


@dataclass(frozen=True)
class Selector:
    metric: str
    labels: frozenset[str]


def expand(expression: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expression = expression.replace(variable, value)
    leftover = re.findall(r"\$[A-Za-z_]\w*", expression)  # not "$1", a label_replace group
    assert not leftover, f"unknown Grafana variables {leftover} in {expression}"
    return expression


def parse(expression: str) -> object:
    """The expression's syntax tree; a ValueError says where it does not parse."""
    return promql_parser.parse(expand(expression))


def selectors(expression: str) -> list[Selector]:
    """Every vector selector in the expression (Grafana's label_values(selector, label) included)."""
    match = LABEL_VALUES.match(expression.strip())
    tree = parse(match["selector"] if match else expression)
    return list(_walk(tree))


def _walk(node: object) -> Iterator[Selector]:
    if isinstance(node, promql_parser.VectorSelector):
        labels = frozenset(m.name for m in node.matchers.matchers)
        assert node.name, f"a selector without a metric name: {node}"
        yield Selector(node.name, labels)
        return
    for attribute in ("expr", "lhs", "rhs", "param", "vector_selector"):
        child = getattr(node, attribute, None)
        if child is not None:
            yield from _walk(child)
    for argument in getattr(node, "args", None) or []:
        yield from _walk(argument)
