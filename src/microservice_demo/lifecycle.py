"""Start-up, readiness, liveness and the graceful drain on SIGTERM.

On SIGTERM the service must turn not-ready at once, keep serving for a short drain delay (so the endpoints
controller and load balancers stop sending new connections), then let Granian stop accepting, finish the requests
in flight and exit 0.

Granian installs the worker's SIGTERM/SIGINT handler on the event loop before the app's lifespan starts, and
stops accepting as soon as that handler runs; it offers the served app no earlier hook (the ASGI lifespan
``shutdown`` event arrives only after the server has stopped). So at start-up this module puts its own handler in
front of Granian's on the running loop: it flips readiness, waits the drain delay, then calls Granian's handler.
Reading the installed handler uses asyncio's ``_signal_handlers`` mapping, which has no public accessor; if a
future Python or Granian changes that, :func:`interpose_drain` logs a warning and leaves Granian's handler alone,
and the SIGTERM test in ``tests/`` fails rather than letting the drain silently vanish.
"""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field

from loguru import logger

_DRAIN_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@dataclass(slots=True)
class Lifecycle:
    """What the probes report. One instance per app; mutated only by the app's own hooks and admin routes."""

    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    alive: bool = True
    draining: bool = False

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def state(self) -> str:
        if self.draining:
            return "draining"
        if not self.ready:
            return "starting"
        return "serving" if self.alive else "unhealthy"

    def begin_drain(self) -> None:
        if not self.draining:
            logger.info("shutdown requested: readiness is now 503, draining")
        self.draining = True
        self.ready = False


def interpose_drain(lifecycle: Lifecycle, drain_seconds: float) -> bool:
    """Put the drain in front of the server's own signal handlers on the running loop.

    Returns whether it did; it does not when the loop has no handler for the signals (a test client, or a
    server that handles signals elsewhere), in which case the lifespan ``shutdown`` still flips readiness.
    """
    loop = asyncio.get_running_loop()
    installed = getattr(loop, "_signal_handlers", None)
    if not isinstance(installed, dict):
        logger.warning(
            "cannot chain to the server's SIGTERM handler on a {} loop: SIGTERM will stop accepting at once; "
            "serve with the asyncio loop (granian --loop asyncio, as `microservice-demo` does) to drain first",
            type(loop).__name__,
        )
        return False
    interposed = False
    for sig in _DRAIN_SIGNALS:
        server_handle = installed.get(sig)
        if server_handle is None:
            continue
        callback, args = server_handle._callback, server_handle._args

        def on_signal(callback: object = callback, args: tuple[object, ...] = args, sig: int = sig) -> None:
            if lifecycle.draining:  # a second signal skips what is left of the delay
                callback(*args)  # type: ignore[operator]
                return
            lifecycle.begin_drain()
            logger.info("received {}; stopping to accept in {:.1f} s", signal.Signals(sig).name, drain_seconds)
            loop.call_later(drain_seconds, callback, *args)  # type: ignore[arg-type]

        loop.add_signal_handler(sig, on_signal)
        interposed = True
    return interposed
