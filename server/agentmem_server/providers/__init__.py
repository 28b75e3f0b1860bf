"""LLM providers: any OpenAI-compatible `/chat/completions` endpoint, or the offline echo."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import ChatCompletion, ChatProvider, request_body
from .offline import OfflineProvider
from .openai import OpenAICompatibleProvider

if TYPE_CHECKING:
    from ..settings import Settings

__all__ = [
    "ChatCompletion",
    "ChatProvider",
    "OfflineProvider",
    "OpenAICompatibleProvider",
    "build_provider",
    "request_body",
]


def build_provider(settings: Settings) -> ChatProvider:
    """The provider `settings.llm_provider` names; call in the app's lifespan, `aclose()` it
    after."""
    if settings.llm_provider == "openai":
        return OpenAICompatibleProvider(
            base_url=settings.llm_base_url,
            api_key=settings.llm_api_key,
            timeout_s=settings.llm_timeout_s,
            max_retries=settings.llm_max_retries,
        )
    if settings.llm_provider == "offline":
        return OfflineProvider()
    raise ValueError(f"llm_provider must be 'openai' or 'offline', not {settings.llm_provider!r}")
