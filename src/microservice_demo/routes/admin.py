"""The admin API: fault injection and the liveness switch, behind a bearer token.

With no token configured these routes are not registered at all, so they answer 404 like any unknown path.
"""

from __future__ import annotations

import hashlib
import hmac

import msgspec
from litestar import Router, delete, get, post
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.exceptions import NotAuthorizedException
from litestar.handlers import BaseRouteHandler
from litestar.params import JSONBody

from microservice_demo.faults import ActiveFaults, ChaosRequest
from microservice_demo.problems import documented
from microservice_demo.runtime import Runtime

SECURITY_SCHEME = "AdminBearerToken"


class LivenessRequest(msgspec.Struct, forbid_unknown_fields=True):
    alive: bool


class Liveness(msgspec.Struct):
    alive: bool


def _digest(token: str) -> bytes:
    # Comparing fixed-length digests keeps the comparison constant-time in the token's length too.
    return hashlib.sha256(token.encode()).digest()


def require_admin_token(connection: ASGIConnection[object, object, object, State], _: BaseRouteHandler) -> None:
    expected = Runtime.of(connection.app.state).settings.admin_token
    scheme, _sep, presented = connection.headers.get("authorization", "").partition(" ")
    if (
        expected is None
        or scheme.lower() != "bearer"
        or not hmac.compare_digest(_digest(presented.strip()), _digest(expected.get_secret_value()))
    ):
        raise NotAuthorizedException(
            detail="a valid admin bearer token is required",
            headers={"WWW-Authenticate": 'Bearer realm="admin"'},
        )


@get("/chaos", summary="The faults active now", tags=["admin"], responses=documented(401))
async def chaos_show(state: State) -> ActiveFaults:
    return Runtime.of(state).faults.active()


@post("/chaos", summary="Switch faults on", tags=["admin"], status_code=200, responses=documented(400, 401))
async def chaos_apply(state: State, data: JSONBody[ChaosRequest]) -> ActiveFaults:
    return Runtime.of(state).faults.apply(data)


@delete("/chaos", summary="Heal every fault", tags=["admin"], status_code=200, responses=documented(401))
async def chaos_heal(state: State) -> ActiveFaults:
    return Runtime.of(state).faults.heal()


@post(
    "/liveness",
    summary="Flip liveness (false makes /healthz answer 503)",
    tags=["admin"],
    status_code=200,
    responses=documented(400, 401),
)
async def liveness(state: State, data: JSONBody[LivenessRequest]) -> Liveness:
    lifecycle = Runtime.of(state).lifecycle
    lifecycle.alive = data.alive
    return Liveness(alive=lifecycle.alive)


def admin_router(fault_injection: bool) -> Router:
    handlers = [liveness]
    if fault_injection:
        handlers += [chaos_show, chaos_apply, chaos_heal]
    return Router(
        path="/admin",
        route_handlers=handlers,
        guards=[require_admin_token],
        security=[{SECURITY_SCHEME: []}],
    )
