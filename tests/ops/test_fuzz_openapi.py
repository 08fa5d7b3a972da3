"""Schemathesis against the OpenAPI document of a real server: no generated request gets a
5xx, and every documented answer matches its schema.

Each operation gets ``MEDTRACE_FUZZ_EXAMPLES`` cases (10 by default, for CI); a bigger run
sets it higher. Schemathesis drives Hypothesis directly here: its pytest plugin does not run
under pytest 9.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from support.chain import Chain

EXAMPLES = int(os.environ.get("MEDTRACE_FUZZ_EXAMPLES", "10"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server_env() -> dict[str, str]:
    """No rate limit: the fuzzer sends as fast as it can with one token."""
    return {"MEDTRACE_RATE_LIMIT": "0"}


def test_no_generated_request_gets_a_server_error(chain: Chain) -> None:
    schema = schemathesis.openapi.from_url(f"{chain.server.url}/openapi.json")
    headers = {"Authorization": f"Bearer {chain.maker.token}"}
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=chain.server.url,
                headers=headers,
                checks=[not_a_server_error, response_schema_conformance],
            )

        try:
            call()
        except Exception as exc:  # a check failed: collect it, go on with the others
            failures.append(f"{operation.label}: {exc}")

    assert len(operations) >= 30, [o.label for o in operations]
    assert not failures, "\n\n".join(failures) + "\n" + chain.server.log()[-5000:]
