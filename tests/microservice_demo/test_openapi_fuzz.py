"""Property-based fuzzing of the service's own OpenAPI schema: no generated request may cause a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.specs.openapi.checks import status_code_conformance

from microservice_demo.app import create_app
from microservice_demo.settings import Settings

# Admin routes are in the schema (a token is configured) but the fuzzer sends no token: it must get 401s, never
# a 5xx, and can't switch faults on, which would make 5xx answers legitimate.
app = create_app(Settings(admin_token="fuzz-admin-token-0123456789", fault_injection=True, log_level="ERROR"))
schema = schemathesis.openapi.from_asgi("/schema/openapi.json", app)


@schema.parametrize()
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case) -> None:
    case.call_and_validate(checks=[not_a_server_error, status_code_conformance, response_schema_conformance])
