"""Base classes for the wire models.

Responses tolerate unknown fields so an older client keeps working against a newer server;
requests reject them so a typo in a field name is an error instead of a silently ignored value.
Each field's attribute docstring is its description in the OpenAPI document too.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ResponseModel(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True, use_attribute_docstrings=True)


class RequestModel(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, use_attribute_docstrings=True)
