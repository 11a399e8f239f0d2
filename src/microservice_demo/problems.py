"""Every error as RFC 9457 problem details (``application/problem+json``).

Litestar's ProblemDetailsPlugin puts the occurrence's text into ``title`` and leaves out ``type``; here ``title``
is the status phrase (the same for every occurrence of the problem type), ``detail`` says what happened this time,
and validation errors list each failing field under ``errors`` (``key``, ``source``, ``message``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from loguru import logger

from microservice_demo.faults import InjectedFault

MEDIA_TYPE = "application/problem+json"


class Problem(msgspec.Struct):
    """The problem details body, as documented in the OpenAPI schema."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def documented(*statuses: int) -> dict[int, ResponseSpec]:
    """OpenAPI response entries for the problem statuses a route can answer (replacing Litestar's own shape)."""
    return {
        status: ResponseSpec(
            Problem, description=HTTPStatus(status).description, media_type=MEDIA_TYPE, generate_examples=False
        )
        for status in statuses
    }


def problem(
    status: int, detail: str, *, errors: Any = None, headers: dict[str, str] | None = None
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def http_exception(_: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    if exc.status_code >= 500:
        logger.opt(exception=exc).error("request failed: {}", exc.detail)
    return problem(exc.status_code, exc.detail, errors=exc.extra, headers=exc.headers)


def injected_fault(_: Request[Any, Any, Any], exc: InjectedFault) -> Response[dict[str, Any]]:
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, str(exc))


def unhandled(_: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    logger.opt(exception=exc).error("unhandled error: {}", exc)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error occurred")


EXCEPTION_HANDLERS = {HTTPException: http_exception, InjectedFault: injected_fault, Exception: unhandled}
