"""Start-up, readiness and liveness, and where shutdown fits in.

Stopping gracefully is the platform's and the server's job, done with their own public mechanisms; the service
takes no part in it:

- In Kubernetes the container's ``preStop`` hook sleeps before the kubelet sends SIGTERM
  (``base/microservice-demo/deployment.yaml``). The pod is marked terminating at once, so the EndpointSlice
  controller turns its endpoint not ready and kube-proxy and the Gateway's proxies stop sending it new requests
  while the hook sleeps; the service keeps answering whatever still arrives.
- On SIGTERM (or SIGINT) Granian's own signal handling stops accepting connections, lets the requests in flight
  finish, then runs the ASGI lifespan ``shutdown`` (Litestar's lifespan context manager exits) and the process
  exits 0.

Readiness therefore turns 503 when the lifespan ``shutdown`` begins: that is the one public hook through which
the app hears of shutdown (Granian gives the served app none earlier), and it arrives once Granian has already
stopped accepting. From then on a client in the same process (Litestar's test client) reads 503 from ``/ready``;
over the network the closed port says the same.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from loguru import logger


@dataclass(slots=True)
class Lifecycle:
    """What the probes report. One instance per app; mutated only by the app's own hooks and admin routes."""

    started_at: float = field(default_factory=time.monotonic)
    ready: bool = False
    alive: bool = True
    stopping: bool = False

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def state(self) -> str:
        if self.stopping:
            return "stopping"
        if not self.ready:
            return "starting"
        return "serving" if self.alive else "unhealthy"

    def begin_shutdown(self) -> None:
        """Called from the lifespan ``shutdown``: the server has stopped accepting and the requests have finished."""
        if not self.stopping:
            logger.info("shutting down: readiness is now 503")
        self.stopping = True
        self.ready = False
