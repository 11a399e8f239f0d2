"""The per-app objects route handlers need, kept together on ``app.state`` (no module-level state)."""

from __future__ import annotations

from dataclasses import dataclass

from litestar.datastructures import State

from microservice_demo.faults import FaultInjector
from microservice_demo.lifecycle import Lifecycle
from microservice_demo.settings import Settings
from microservice_demo.telemetry import Telemetry

_KEY = "runtime"


@dataclass(frozen=True, slots=True)
class Runtime:
    settings: Settings
    lifecycle: Lifecycle
    faults: FaultInjector
    telemetry: Telemetry | None

    def store(self, state: State) -> None:
        state[_KEY] = self

    @staticmethod
    def of(state: State) -> Runtime:
        runtime = state[_KEY]
        assert isinstance(runtime, Runtime)
        return runtime
