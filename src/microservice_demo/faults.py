"""Fault injection, to prove the alerting chain end to end: errors, latency, CPU burn and held memory.

Every fault is bounded and expires by itself. Errors and latency apply only to API requests (``/api/...``),
inside the app, so the HTTP instrumentation around it measures, traces and logs them like real ones.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from dataclasses import dataclass
from typing import Annotated

import msgspec

MAX_DURATION_SECONDS = 300.0
MAX_LATENCY_MS = 60_000
MAX_MEMORY_MB = 256


_ERROR_RATE = "Fraction of API requests that answer 500, from 0 to 1."
_LATENCY = f"Milliseconds added to every API request, at most {MAX_LATENCY_MS}."
_CPU = f"Seconds to keep one core busy, at most {MAX_DURATION_SECONDS:.0f}."
_MEMORY = f"Megabytes to hold, at most {MAX_MEMORY_MB}."
_DURATION = f"Seconds error_rate, latency_ms and memory last, at most {MAX_DURATION_SECONDS:.0f}."


class ChaosRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Faults to switch on; fields left out keep their current setting."""

    error_rate: Annotated[float, msgspec.Meta(ge=0.0, le=1.0, description=_ERROR_RATE)] | None = None
    latency_ms: Annotated[int, msgspec.Meta(ge=0, le=MAX_LATENCY_MS, description=_LATENCY)] | None = None
    cpu: Annotated[float, msgspec.Meta(gt=0.0, le=MAX_DURATION_SECONDS, description=_CPU)] | None = None
    memory: Annotated[int, msgspec.Meta(gt=0, le=MAX_MEMORY_MB, description=_MEMORY)] | None = None
    duration_seconds: Annotated[float, msgspec.Meta(gt=0.0, le=MAX_DURATION_SECONDS, description=_DURATION)] = 60.0


class ActiveFaults(msgspec.Struct):
    """What is active now, with the seconds each fault has left."""

    error_rate: float
    latency_ms: int
    cpu_seconds_left: float
    memory_mb: int
    error_rate_seconds_left: float
    latency_seconds_left: float
    memory_seconds_left: float


class InjectedFault(Exception):
    """Raised inside the app for a request the error-rate fault picked."""


@dataclass(slots=True)
class _Timed:
    value: float = 0.0
    until: float = 0.0

    def current(self, now: float) -> float:
        return self.value if now < self.until else 0.0

    def left(self, now: float) -> float:
        return max(0.0, self.until - now) if self.value else 0.0


class FaultInjector:
    """The faults of one app instance. Not shared between apps; nothing global."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._rng = rng or random.Random()  # noqa: S311 - picks requests to fail, not a secret
        self._error_rate = _Timed()
        self._latency_ms = _Timed()
        self._memory_mb = _Timed()
        self._memory: bytes | None = None
        self._cpu_stop = threading.Event()
        self._cpu_until = 0.0
        self._cpu_thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def apply(self, request: ChaosRequest) -> ActiveFaults:
        now = time.monotonic()
        until = now + request.duration_seconds
        with self._lock:
            if request.error_rate is not None:
                self._error_rate = _Timed(request.error_rate, until)
            if request.latency_ms is not None:
                self._latency_ms = _Timed(float(request.latency_ms), until)
            if request.memory is not None:
                # bytes(n) from a repeated pattern is written, not lazily mapped: the pages are really resident.
                self._memory = b"\xa5" * (request.memory * 1024 * 1024)
                self._memory_mb = _Timed(float(request.memory), until)
            if request.cpu is not None:
                self._start_cpu_burn(request.cpu)
        return self.active()

    def heal(self) -> ActiveFaults:
        with self._lock:
            self._error_rate = _Timed()
            self._latency_ms = _Timed()
            self._memory_mb = _Timed()
            self._memory = None
            self._stop_cpu_burn()
        return self.active()

    def active(self) -> ActiveFaults:
        now = time.monotonic()
        self._release_expired_memory(now)
        return ActiveFaults(
            error_rate=self._error_rate.current(now),
            latency_ms=int(self._latency_ms.current(now)),
            cpu_seconds_left=round(max(0.0, self._cpu_until - now), 3) if self._cpu_running() else 0.0,
            memory_mb=int(self._memory_mb.current(now)),
            error_rate_seconds_left=round(self._error_rate.left(now), 3),
            latency_seconds_left=round(self._latency_ms.left(now), 3),
            memory_seconds_left=round(self._memory_mb.left(now), 3),
        )

    @property
    def any_active(self) -> bool:
        faults = self.active()
        return bool(faults.error_rate or faults.latency_ms or faults.cpu_seconds_left or faults.memory_mb)

    async def before_api_request(self) -> None:
        """Delay and/or fail the current API request as the active faults say."""
        now = time.monotonic()
        latency = self._latency_ms.current(now)
        if latency:
            await asyncio.sleep(latency / 1000)
        rate = self._error_rate.current(now)
        if rate and self._rng.random() < rate:
            raise InjectedFault(f"injected fault (error_rate={rate})")

    def close(self) -> None:
        self.heal()

    def _release_expired_memory(self, now: float) -> None:
        if self._memory is not None and not self._memory_mb.current(now):
            with self._lock:
                self._memory = None
                self._memory_mb = _Timed()

    def _cpu_running(self) -> bool:
        return self._cpu_thread is not None and self._cpu_thread.is_alive()

    def _start_cpu_burn(self, seconds: float) -> None:
        self._stop_cpu_burn()
        self._cpu_stop = threading.Event()
        self._cpu_until = time.monotonic() + seconds
        self._cpu_thread = threading.Thread(
            target=_burn, args=(self._cpu_until, self._cpu_stop), name="chaos-cpu", daemon=True
        )
        self._cpu_thread.start()

    def _stop_cpu_burn(self) -> None:
        self._cpu_stop.set()
        if self._cpu_thread is not None:
            self._cpu_thread.join(timeout=5)
        self._cpu_thread = None
        self._cpu_until = 0.0


def _burn(until: float, stop: threading.Event) -> None:
    """Keep a core busy until the deadline; checks the stop flag often enough to heal within milliseconds."""
    while time.monotonic() < until and not stop.is_set():
        x = 0
        for i in range(20_000):
            x += i * i
