"""The CapabilityStatement: what this FHIR endpoint serves, for a hospital's integration."""

from __future__ import annotations

import json
from typing import Any

from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome

from medtrace import __version__
from medtrace.fhir.service import SEARCH_PARAMETERS

FHIR_JSON = "application/fhir+json"
#: What a hospital system may post (``medtrace.fhir.dispense``).
CREATED_TYPES = frozenset({"MedicationDispense"})
_SEARCH_TYPES = {"whenhandedover": "date", "target": "reference", "identifier": "token"}


def capability_statement(base_url: str, published: str) -> dict[str, Any]:
    """Read and search-type interactions and the search parameters of every resource, and
    create where a hospital system may post."""
    statement = CapabilityStatement.model_validate(
        {
            "resourceType": "CapabilityStatement",
            "status": "active",
            "date": published,
            "kind": "instance",
            "software": {"name": "medtrace", "version": __version__},
            "implementation": {
                "description": "medtrace custody records",
                "url": f"{base_url}/fhir",
            },
            "fhirVersion": "4.0.1",
            "format": [FHIR_JSON, "json"],
            "rest": [
                {
                    "mode": "server",
                    "resource": [
                        {
                            "type": resource_type,
                            "interaction": [
                                {"code": "read"},
                                {"code": "search-type"},
                                *([{"code": "create"}] if resource_type in CREATED_TYPES else []),
                            ],
                            "searchParam": [
                                {"name": name, "type": _SEARCH_TYPES.get(name, "token")}
                                for name in names
                            ],
                        }
                        for resource_type, names in SEARCH_PARAMETERS.items()
                    ],
                }
            ],
        }
    )
    data: dict[str, Any] = json.loads(statement.model_dump_json(exclude_none=True))
    return data


def operation_outcome(code: str, rule: str, message: str) -> dict[str, Any]:
    """A FHIR error: one issue with FHIR's issue code and medtrace's rule and message."""
    outcome = OperationOutcome.model_validate(
        {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "error",
                    "code": code,
                    "details": {"coding": [{"system": "urn:medtrace:rule", "code": rule}]},
                    "diagnostics": message,
                }
            ],
        }
    )
    data: dict[str, Any] = json.loads(outcome.model_dump_json(exclude_none=True))
    return data
