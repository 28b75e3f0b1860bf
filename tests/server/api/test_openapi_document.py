"""The OpenAPI document tells the truth: error answers are declared with their body, and every
field and parameter is described (with examples)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentmem_server import create_app
from agentmem_server.api.idempotency import route_policy

from support import make_settings

ERROR_REF = "#/components/schemas/ErrorBody"


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return create_app(make_settings(Path(tmp_path_factory.mktemp("spec")))).openapi()


def operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            yield f"{method.upper()} {path}", op


def test_every_v1_operation_declares_its_errors_with_the_error_body(spec: dict) -> None:
    for name, op in operations(spec):
        if " /v1/" not in name:
            continue
        errors = {code: r for code, r in op["responses"].items() if code[0] in "45"}
        assert {"401", "429", "500"} <= errors.keys(), name
        for code, response in errors.items():
            assert response["content"]["application/json"]["schema"] == {"$ref": ERROR_REF}, (
                name,
                code,
            )
            assert response["description"], (name, code)
        if "requestBody" in op or op.get("parameters"):
            assert "422" in errors, name
        method, path = name.split()
        if route_policy(method, path) is not None:  # the operation takes idempotency keys
            assert "409" in errors, f"{name}: an idempotency key can be in use (409 in_progress)"
    assert "HTTPValidationError" not in spec["components"]["schemas"], (
        "FastAPI's 422 body is never sent"
    )


def test_every_field_is_described_with_examples(spec: dict) -> None:
    missing = []
    for model, schema in spec["components"]["schemas"].items():
        for field, prop in schema.get("properties", {}).items():
            if not prop.get("description"):
                missing.append(f"{model}.{field}: description")
            is_model = (
                "$ref" in prop or "items" in prop and "$ref" in prop["items"] or "allOf" in prop
            )
            if not is_model and "examples" not in prop and model not in ("ErrorBody",):
                missing.append(f"{model}.{field}: examples")
    assert not missing, missing


def test_every_parameter_is_described(spec: dict) -> None:
    missing = [
        f"{name} {p['name']}"
        for name, op in operations(spec)
        for p in op.get("parameters", [])
        if not p.get("description")
    ]
    assert not missing, missing


def test_the_import_body_and_export_answer_are_json_lines(spec: dict) -> None:
    assert "application/x-ndjson" in spec["paths"]["/v1/import"]["post"]["requestBody"]["content"]
    assert (
        "application/x-ndjson" in spec["paths"]["/v1/export"]["get"]["responses"]["200"]["content"]
    )
