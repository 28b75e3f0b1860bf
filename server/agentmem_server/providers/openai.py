"""Any OpenAI-compatible `/chat/completions` endpoint (OpenAI, vLLM, Ollama, LiteLLM, ...) over
httpx."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from typing import Any, Optional

import httpx

from agentmem.types import Usage

from ..errors import UpstreamError
from .base import ChatCompletion, request_body

log = logging.getLogger("agentmem.providers")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
INITIAL_BACKOFF_S = 0.5
MAX_BACKOFF_S = 8.0
MAX_RETRY_AFTER_S = 30.0
"""A provider asking us to wait longer than this is treated as down rather than waited for."""
MAX_ERROR_CHARS = 500


class OpenAICompatibleProvider:
    """Posts to `{base_url}/chat/completions` with a bearer key.

    Retries connection failures, 408, 429 and 5xx up to `max_retries` times with jittered capped
    backoff, honouring `Retry-After`. A read timeout is not retried: the provider may still be
    generating (and billing) the first answer, and the caller has already waited `timeout_s`.
    """

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        api_key: Optional[str],
        timeout_s: float = 60.0,
        max_retries: int = 2,
        initial_backoff_s: float = INITIAL_BACKOFF_S,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ):
        self.base_url = base_url.rstrip("/")
        self.max_retries = max(0, max_retries)
        self.initial_backoff_s = initial_backoff_s
        headers = {"content-type": "application/json", "accept": "application/json"}
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        # Connecting should be quick; generating may take the whole budget.
        timeout = httpx.Timeout(timeout_s, connect=min(10.0, timeout_s))
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(
        self,
        model: str,
        messages: list[dict[str, Any]],
        tools: Optional[list[dict[str, Any]]] = None,
        *,
        tool_choice: Optional[str] = None,
    ) -> ChatCompletion:
        url = f"{self.base_url}/chat/completions"
        body = request_body(model, messages, tools, tool_choice)
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                response = await self._client.post(url, content=body)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                if attempt < self.max_retries:
                    delay = self._jittered(attempt)
                    log.warning(
                        "LLM provider unreachable (%s); retry %d in %.2fs", exc, attempt + 1, delay
                    )
                    attempt += 1
                    await asyncio.sleep(delay)
                    continue
                raise UpstreamError(f"LLM provider unreachable at {url}: {exc!r}") from exc
            except httpx.TimeoutException as exc:
                raise UpstreamError(
                    f"LLM provider timed out after {time.perf_counter() - started:.1f}s"
                ) from exc
            except httpx.HTTPError as exc:
                raise UpstreamError(f"LLM provider request failed: {exc!r}") from exc

            if response.status_code in RETRY_STATUSES and attempt < self.max_retries:
                wait = self._backoff(attempt, response.headers.get("retry-after"))
                if wait is not None:
                    log.warning(
                        "LLM provider answered %d; retry %d in %.2fs",
                        response.status_code,
                        attempt + 1,
                        wait,
                    )
                    attempt += 1
                    await asyncio.sleep(wait)
                    continue
            if response.status_code >= 400:
                raise UpstreamError(
                    f"LLM provider answered {response.status_code}: {_error_message(response)}",
                    provider_status=response.status_code,
                )
            return _parse(response)

    def _backoff(self, attempt: int, retry_after: Optional[str]) -> Optional[float]:
        """Seconds to wait before retry `attempt + 1`, or None when the provider asks for too
        long."""
        if retry_after is not None:
            wait = _parse_retry_after(retry_after)
            if wait is not None:
                return None if wait > MAX_RETRY_AFTER_S else wait
        return self._jittered(attempt)

    def _jittered(self, attempt: int) -> float:
        """Capped exponential backoff with full jitter: replicas that failed together should not
        retry together."""
        capped = min(MAX_BACKOFF_S, self.initial_backoff_s * 2**attempt)
        return random.uniform(capped / 2, capped)


def _parse_retry_after(value: str) -> Optional[float]:
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:MAX_ERROR_CHARS]
        if isinstance(err, str):
            return err[:MAX_ERROR_CHARS]
        if data.get("message"):
            return str(data["message"])[:MAX_ERROR_CHARS]
    return (response.text or response.reason_phrase or "no body")[:MAX_ERROR_CHARS]


def _parse(response: httpx.Response) -> ChatCompletion:
    try:
        data = response.json()
        choice = data["choices"][0]
        message = choice["message"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise UpstreamError(
            f"LLM provider sent an unreadable completion: {response.text[:MAX_ERROR_CHARS]!r}"
        ) from exc
    raw_usage = data.get("usage") or {}
    usage = Usage(
        prompt_tokens=int(raw_usage.get("prompt_tokens") or 0),
        completion_tokens=int(raw_usage.get("completion_tokens") or 0),
        total_tokens=int(raw_usage.get("total_tokens") or 0),
    )
    tool_calls = message.get("tool_calls") or []
    if not isinstance(tool_calls, list):
        raise UpstreamError(
            f"LLM provider sent malformed tool_calls: {tool_calls!r}"[:MAX_ERROR_CHARS]
        )
    return ChatCompletion(
        content=message.get("content"),
        tool_calls=tool_calls,
        usage=usage,
        finish_reason=choice.get("finish_reason"),
        model=data.get("model"),
    )
