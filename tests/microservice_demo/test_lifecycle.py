"""The SIGTERM drain in front of the server's handler, with real signals on a real event loop."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from typing import Any

from microservice_demo.lifecycle import Lifecycle, interpose_drain


def test_states() -> None:
    lifecycle = Lifecycle()
    assert (lifecycle.state, lifecycle.ready) == ("starting", False)
    lifecycle.ready = True
    assert lifecycle.state == "serving"
    lifecycle.alive = False
    assert lifecycle.state == "unhealthy"
    lifecycle.begin_drain()
    assert (lifecycle.state, lifecycle.ready) == ("draining", False)


def test_sigterm_drains_before_the_servers_handler_runs() -> None:
    lifecycle = Lifecycle(ready=True)
    server_stopped_at: list[float] = []

    async def scenario() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, lambda: server_stopped_at.append(time.monotonic()))
        assert interpose_drain(lifecycle, drain_seconds=0.3)
        sent = time.monotonic()
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.05)
        drained_at_once = lifecycle.draining and not lifecycle.ready and not server_stopped_at
        await asyncio.sleep(0.5)
        loop.remove_signal_handler(signal.SIGTERM)
        return sent, drained_at_once

    sent, drained_at_once = asyncio.run(scenario())
    assert drained_at_once
    assert len(server_stopped_at) == 1
    assert server_stopped_at[0] - sent >= 0.3


def test_a_second_signal_skips_the_rest_of_the_delay() -> None:
    lifecycle = Lifecycle(ready=True)
    calls: list[str] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: calls.append("server"))
        interpose_drain(lifecycle, drain_seconds=30)
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.05)
        assert calls == []
        os.kill(os.getpid(), signal.SIGINT)
        await asyncio.sleep(0.05)
        loop.remove_signal_handler(signal.SIGINT)

    asyncio.run(scenario())
    assert calls == ["server"]


def test_nothing_to_interpose_without_a_server_handler() -> None:
    async def scenario() -> bool:
        return interpose_drain(Lifecycle(), drain_seconds=1)

    assert asyncio.run(scenario()) is False


def test_a_loop_without_a_readable_handler_table_is_reported(monkeypatch: Any) -> None:
    messages: list[str] = []
    monkeypatch.setattr("microservice_demo.lifecycle.logger.warning", lambda msg, *args: messages.append(msg))

    async def scenario() -> bool:
        loop = asyncio.get_running_loop()
        with monkeypatch.context() as patch:  # as on uvloop, whose handler table Python can't read
            patch.setattr(loop, "_signal_handlers", None)
            return interpose_drain(Lifecycle(), drain_seconds=1)

    assert asyncio.run(scenario()) is False
    assert "granian --loop asyncio" in messages[0]
