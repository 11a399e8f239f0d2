"""``microservice-demo`` / ``python -m microservice_demo``: check the settings, then let Granian serve the app.

Checking the settings here first means a bad ``APP_*`` variable stops the process with one line naming it before
any port is bound (Granian binds in its main process and only then loads the app in a worker).

The event loop is uvloop, a dependency of the service, so a local run and the image use the same loop. Nothing in
the service needs asyncio's own loop: shutdown is Granian's signal handling after the pod's preStop sleep.

SIGTERM and SIGINT are Granian's: it stops accepting, lets the requests in flight finish, runs the app's lifespan
``shutdown`` and exits 0 (``lifecycle.py``). In Kubernetes the container's ``preStop`` sleep comes first.

One worker per process, always: the Prometheus exporter lives inside the process, so with several workers behind
one port ``/metrics`` would report whichever worker happened to answer the scrape. Scale with replicas instead.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from microservice_demo.logs import configure_logging
from microservice_demo.settings import load_settings_or_exit

APP_FACTORY = "microservice_demo.app:create_app"

# Granian's own loggers go to loguru in this (main) process too; the worker's are routed by the app factory.
_GRANIAN_LOGGING = {
    "handlers": {"loguru": {"()": "microservice_demo.logs.InterceptHandler"}},
    "loggers": {
        "_granian": {"handlers": ["loguru"], "propagate": False},
        "granian.access": {"handlers": ["loguru"], "propagate": False},
    },
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="microservice-demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reload", action="store_true", help="restart the worker when a source file changes")
    args = parser.parse_args(argv)

    settings = load_settings_or_exit()
    configure_logging(settings.log_level, settings.log_format)

    from granian import Granian
    from granian.constants import Interfaces, Loops

    server = Granian(
        APP_FACTORY,
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.host,
        port=settings.port,
        workers=1,
        loop=Loops.uvloop,
        log_dictconfig=_GRANIAN_LOGGING,
        log_access=False,  # the app writes its own access line, with trace ids
        reload=args.reload,
        reload_paths=[Path(__file__).resolve().parent] if args.reload else None,
    )
    server.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
