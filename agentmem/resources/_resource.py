"""Base of every resource: a handle on the client that sends its requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from pydantic_core import PydanticSerializationError

from .._exceptions import ArgumentError

if TYPE_CHECKING:
    from .._client import AsyncClient, Client


class SyncAPIResource:
    def __init__(self, client: Client) -> None:
        self._client = client


class AsyncAPIResource:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client


def request_body(model: BaseModel) -> dict[str, Any]:
    """The JSON of a wire request model, holding only the fields the caller set."""
    # Unset fields are left out so the server's defaults apply, even after they change.
    try:
        return model.model_dump(mode="json", exclude_unset=True)
    except PydanticSerializationError as exc:  # e.g. an object in `metadata`: not JSON
        raise ArgumentError(f"{type(model).__name__} is not JSON-serialisable: {exc}") from None
