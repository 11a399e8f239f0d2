"""Typed settings read from ``APP_*`` environment variables and validated once, at start.

OpenTelemetry keeps its own standard ``OTEL_*`` variables (read by the SDK); everything else lives here.
"""

from __future__ import annotations

import os
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "APP_"


def _package_version() -> str:
    try:
        return _dist_version("microservice-demo")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


class Settings(BaseSettings):
    """Every setting of the service; docs/service.md's table (Settings) lists them with their defaults."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # The overlay's folder name (overlays/<env>/), a DNS label like the namespace it ends; any environment added
    # by docs/add-an-environment.md is one.
    environment: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")] = "local"
    version: Annotated[str, Field(min_length=1, max_length=128)] = Field(default_factory=_package_version)
    git_commit: Annotated[str, Field(pattern=r"^([0-9a-f]{7,40}|unknown)$")] = "unknown"
    image: Annotated[str, Field(max_length=512)] = "unknown"

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=1, le=65535)] = 8000

    log_level: Literal["TRACE", "DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    log_format: Literal["json", "text"] = "text"
    access_log: bool = True

    admin_token: SecretStr | None = None
    fault_injection: bool = False

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("admin_token", mode="before")
    @classmethod
    def _token_strength(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if isinstance(value, str) and (len(value) < 16 or value != value.strip()):
            raise ValueError("must be at least 16 characters with no surrounding white space")
        return value


class SettingsError(Exception):
    """Raised with one human-readable line per invalid variable."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


def _describe(error: dict[str, object]) -> str:
    loc = error.get("loc") or ("?",)
    field = str(loc[0]) if isinstance(loc, tuple) else str(loc)
    variable = f"{ENV_PREFIX}{field.upper()}"
    value = os.environ.get(variable, error.get("input"))  # as the operator wrote it, before any coercion
    shown = "<hidden>" if field == "admin_token" else repr(value)
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    return f"invalid setting {variable}={shown}: {message}"


SECRETS_DIR_VARIABLE = f"{ENV_PREFIX}SECRETS_DIR"


def load_settings() -> Settings:
    """Read and validate the environment; raise :class:`SettingsError` naming each bad variable.

    With ``APP_SECRETS_DIR`` set, a setting may also come from a file in that folder named after its variable in
    lower case (``app_admin_token``), as a Kubernetes Secret mounted as a volume provides it; the environment
    wins where both are set.
    """
    secrets_dir = os.environ.get(SECRETS_DIR_VARIABLE) or None
    if secrets_dir is not None and not os.path.isdir(secrets_dir):
        raise SettingsError([f"invalid setting {SECRETS_DIR_VARIABLE}={secrets_dir!r}: not a directory"])
    try:
        return Settings(_secrets_dir=secrets_dir)  # type: ignore[call-arg]
    except ValidationError as exc:
        raise SettingsError([_describe(dict(err)) for err in exc.errors()]) from None


def load_settings_or_exit() -> Settings:
    """:func:`load_settings`, or print one line per bad variable to stderr and exit with status 2."""
    try:
        return load_settings()
    except SettingsError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr, flush=True)
        raise SystemExit(2) from None
