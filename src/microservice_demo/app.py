"""The application factory Granian serves: ``granian --interface asgi --factory microservice_demo.app:create_app``."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TextIO

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from loguru import logger

from microservice_demo.faults import FaultInjector
from microservice_demo.instrumentation import HttpInstrumentation
from microservice_demo.lifecycle import Lifecycle
from microservice_demo.logs import configure_logging
from microservice_demo.problems import EXCEPTION_HANDLERS
from microservice_demo.routes.admin import SECURITY_SCHEME, admin_router
from microservice_demo.routes.api import api_router
from microservice_demo.routes.probes import healthz, index, metrics, ready
from microservice_demo.runtime import Runtime
from microservice_demo.settings import Settings, load_settings_or_exit
from microservice_demo.telemetry import SERVICE_NAME, create_telemetry


def create_app(settings: Settings | None = None, *, log_stream: TextIO | None = None) -> Litestar:
    """Build the service. Without ``settings`` they are read from the environment; bad ones exit with status 2."""
    settings = settings if settings is not None else load_settings_or_exit()
    configure_logging(settings.log_level, settings.log_format, log_stream)
    telemetry = create_telemetry(settings)
    runtime = Runtime(settings=settings, lifecycle=Lifecycle(), faults=FaultInjector(), telemetry=telemetry)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        # What start-up built (routes, schemas, models, providers) lives as long as the process: frozen, the
        # collector's full passes no longer walk it. Without this a request that allocates enough to trigger one
        # paused the loop for 20-30 ms (POST p99 31 -> 10 ms, bench/README.md). Unfrozen at shutdown, so an app
        # built and stopped in a longer-lived process (the tests) leaves nothing uncollectable behind.
        gc.collect()
        gc.freeze()
        runtime.lifecycle.ready = True
        logger.info(
            "{} {} ready (environment={}, telemetry={})",
            SERVICE_NAME,
            settings.version,
            settings.environment,
            "on" if telemetry else "off",
        )
        try:
            yield
        finally:
            runtime.lifecycle.begin_shutdown()  # Granian has stopped accepting; the requests have finished
            runtime.faults.close()
            if telemetry is not None:
                telemetry.shutdown()
            gc.unfreeze()
            logger.info("{} stopped", SERVICE_NAME)

    route_handlers: list[object] = [index, healthz, ready, api_router(settings.fault_injection)]
    if telemetry is not None:
        route_handlers.append(metrics)
    if settings.admin_token is not None:
        route_handlers.append(admin_router(settings.fault_injection))

    app = Litestar(
        route_handlers=route_handlers,  # type: ignore[arg-type]
        lifespan=[lifespan],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title=SERVICE_NAME,
            version=settings.version,
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(security_schemes={SECURITY_SCHEME: SecurityScheme(type="http", scheme="bearer")}),
        ),
        logging_config=None,
        debug=False,
    )
    runtime.store(app.state)
    # Outermost, around Litestar's own exception handling, as Litestar wraps its OpenTelemetry middleware.
    app.asgi_handler = HttpInstrumentation(app.asgi_handler, telemetry, settings.access_log)
    return app
