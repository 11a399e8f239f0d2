"""The public API under ``/api/v1``: greetings, status and what is running."""

from __future__ import annotations

import platform
from typing import Annotated

import msgspec
from litestar import Request, Router, get, post
from litestar.datastructures import State
from litestar.exceptions import ValidationException
from litestar.params import JSONBody, Parameter

from microservice_demo.problems import documented
from microservice_demo.runtime import Runtime

NAME_MAX = 64
# 500 is documented on every API route: the error-rate fault (admin API) may answer it on purpose.
# JSON Schema can't say "printable", so the schema excludes control characters and the handler applies
# Python's full str.isprintable() on top; both failures are a 400 naming the field.
NAME_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]+$"
NameField = Annotated[str, msgspec.Meta(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)]


class HelloRequest(msgspec.Struct, forbid_unknown_fields=True):
    name: NameField


class Greeting(msgspec.Struct):
    message: str


class Status(msgspec.Struct):
    environment: str
    version: str
    uptime_seconds: float
    state: str
    faults_active: bool


class Info(msgspec.Struct):
    version: str
    git_commit: str
    image: str
    environment: str
    python: str


def _greet(name: str, source: str) -> Greeting:
    if not name.isprintable():
        raise ValidationException(
            detail="name must be 1-64 printable characters",
            extra=[{"key": "name", "source": source, "message": "must be 1-64 printable characters"}],
        )
    return Greeting(message=f"Hello, {name}!")


@get("/hello", summary="A greeting", tags=["api"], responses=documented(400, 500))
async def hello_query(
    name: Annotated[
        str,
        Parameter(
            min_length=1,
            max_length=NAME_MAX,
            pattern=NAME_PATTERN,
            description="Who to greet: 1-64 printable characters.",
        ),
    ] = "World",
) -> Greeting:
    return _greet(name, "query")


@post("/hello", summary="A greeting", tags=["api"], status_code=200, responses=documented(400, 500))
async def hello_body(data: JSONBody[HelloRequest]) -> Greeting:
    return _greet(data.name, "body")


@get("/status", summary="Environment, version, uptime and state", tags=["api"], responses=documented(500))
async def status(state: State) -> Status:
    runtime = Runtime.of(state)
    return Status(
        environment=runtime.settings.environment,
        version=runtime.settings.version,
        uptime_seconds=round(runtime.lifecycle.uptime_seconds, 3),
        state=runtime.lifecycle.state,
        faults_active=runtime.faults.any_active,
    )


@get(
    "/info",
    summary="What is running: version, commit, image, environment",
    tags=["api"],
    responses=documented(500),
)
async def info(state: State) -> Info:
    settings = Runtime.of(state).settings
    return Info(
        version=settings.version,
        git_commit=settings.git_commit,
        image=settings.image,
        environment=settings.environment,
        python=platform.python_version(),
    )


async def _inject_faults(request: Request[object, object, State]) -> None:
    await Runtime.of(request.app.state).faults.before_api_request()


def api_router(fault_injection: bool) -> Router:
    return Router(
        path="/api/v1",
        route_handlers=[hello_query, hello_body, status, info],
        before_request=_inject_faults if fault_injection else None,
    )
