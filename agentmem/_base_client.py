"""The decisions both clients share, free of I/O: build the request, decide a retry, map errors.

`Client` and `AsyncClient` only send and sleep; everything they decide is decided here, once.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Generic, Optional, TypeVar, Union, cast
from urllib.parse import quote

import httpx
from pydantic import TypeAdapter, ValidationError

from ._constants import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    INITIAL_RETRY_DELAY,
    MAX_RETRY_AFTER,
    MAX_RETRY_DELAY,
    MODIFY_CONFLICT_DELAY,
    MODIFY_MAX_CONFLICT_DELAY,
    RETRY_JITTER,
    RETRYABLE_STATUS_CODES,
    RUN_TIMEOUT,
)
from ._exceptions import (
    AgentMemError,
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    ArgumentError,
    ArgumentTypeError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GoneError,
    InternalServerError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    RequestInProgressError,
    RequestInterruptedError,
    UnprocessableEntityError,
)
from ._version import __version__

log = logging.getLogger("agentmem")

Timeout = Union[float, httpx.Timeout, None]

T = TypeVar("T")

_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    413: PayloadTooLargeError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
# 409s that are not version races (see `_exceptions`), by their `error.type`.
_IDEMPOTENCY_ERRORS: dict[str, type[APIStatusError]] = {
    "in_progress": RequestInProgressError,
    "interrupted": RequestInterruptedError,
}

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
"""Requests of any other method carry an `Idempotency-Key`, so a retry never acts twice."""
IDEMPOTENCY_HEADER = "Idempotency-Key"
REDACTED = "[api key]"


@dataclass(frozen=True)
class APIRequest(Generic[T]):
    """One call as the resources describe it: what to send and what the answer parses into."""

    method: str
    path: str
    cast_to: Optional[type[T]] = None
    """The response type (`MemoryBlock`, `list[Agent]`, ...); `None` for empty answers."""
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    long_running: bool = False
    """Waits on an LLM, so its default timeout is at least `RUN_TIMEOUT`."""
    idempotency_key: Optional[str] = None
    """The caller's own key for a write; `None` makes a fresh one for this call."""


def path_segment(value: str) -> str:
    """Escape an id for use as one URL path segment."""
    # Dot segments would be collapsed by URL normalisation ("/agents/.." is "/"), so escape them.
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


class BaseClient:
    def __init__(
        self,
        *,
        api_key: Optional[str],
        base_url: Optional[str],
        timeout: Timeout,
        max_retries: int,
    ) -> None:
        source = "api_key" if api_key is not None else API_KEY_ENV
        api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not api_key:
            raise AgentMemError(
                f"No API key: pass api_key=... or set the {API_KEY_ENV} environment variable."
            )
        base_url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        if not isinstance(base_url, str) or not _is_http_url(base_url):
            raise ArgumentError(f"base_url must start with http:// or https://, got {base_url!r}")
        if not isinstance(max_retries, int) or isinstance(max_retries, bool):
            raise ArgumentTypeError(f"max_retries must be an int; got {type(max_retries).__name__}")
        if max_retries < 0:
            raise ArgumentError(f"max_retries must be >= 0, got {max_retries!r}")
        check_timeout(timeout)
        self.api_key = check_api_key(api_key, source=source)
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and tracebacks.
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    @property
    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "User-Agent": f"agentmem-python/{__version__}",
        }

    def _build_request(
        self,
        http: Union[httpx.Client, httpx.AsyncClient],
        request: APIRequest[Any],
        timeout: Timeout,
    ) -> httpx.Request:
        """The one `httpx.Request` of a call: each retry sends it again, idempotency key too."""
        if http.is_closed:
            raise AgentMemError(
                "The client is closed; make a new one (or use it in a `with` block)."
            )
        timeout = self._resolve_timeout(request, timeout)
        headers = self._headers
        if request.method not in IDEMPOTENT_METHODS:
            # One key per logical call, made before the first try: the server answers a retry of
            # a write that already happened with that write's result instead of doing it again.
            headers[IDEMPOTENCY_HEADER] = request.idempotency_key or str(uuid.uuid4())
        try:
            # Building through the caller's httpx client keeps its own default headers and cookies.
            return http.build_request(
                request.method,
                self.base_url + request.path,
                params={k: v for k, v in request.params.items() if v is not None},
                json=request.json,
                headers=headers,
                timeout=timeout,
            )
        except (ValueError, TypeError) as exc:  # e.g. NaN in metadata: JSON has no such number
            raise ArgumentError(
                f"{request.method} {request.path}: the request cannot be encoded: "
                f"{self._redact(str(exc))}"
            ) from None

    def _resolve_timeout(self, request: APIRequest[Any], timeout: Timeout) -> Timeout:
        check_timeout(timeout)
        if timeout is not None:
            return timeout
        if request.long_running and isinstance(self.timeout, (int, float)):
            return max(float(self.timeout), RUN_TIMEOUT)
        return self.timeout

    def _retry_delay(
        self,
        request: httpx.Request,
        retries_taken: int,
        *,
        response: Optional[httpx.Response] = None,
        error: Optional[httpx.TransportError] = None,
    ) -> Optional[float]:
        """Seconds to wait before sending `request` again, or `None` to give up now."""
        what = f"{request.method} {request.url.path}"
        cause = (
            f"status {response.status_code}" if response is not None else self._redact(repr(error))
        )
        should_retry = response.headers.get("x-should-retry") if response is not None else None
        if should_retry == "false":
            # The server already retried what failed (e.g. the LLM provider): another try would
            # repeat that whole cost.
            log.debug("Not retrying %s: the server said x-should-retry: false", what)
            return None
        if (
            response is not None
            and response.status_code not in RETRYABLE_STATUS_CODES
            # The server asks for a retry of what is safe to repeat: the same idempotency key
            # while its first request is still running (409 `in_progress`).
            and should_retry != "true"
        ):
            log.debug("Not retrying %s: %s is not retryable", what, cause)
            return None
        if error is not None and not _is_transient(error):
            log.debug("Not retrying %s: %s is not transient", what, cause)
            return None
        if retries_taken >= self.max_retries:
            log.debug("Not retrying %s after %s: %d retries taken", what, cause, retries_taken)
            return None
        retry_after = parse_retry_after(response.headers.get("retry-after")) if response else None
        if retry_after is not None and retry_after > MAX_RETRY_AFTER:
            log.info("Not retrying %s: server asked to wait %.0fs", what, retry_after)
            return None
        delay = retry_after if retry_after is not None else backoff_delay(retries_taken)
        log.info(
            "Retrying %s in %.2fs after %s (retry %d of %d)",
            what,
            delay,
            cause,
            retries_taken + 1,
            self.max_retries,
        )
        return delay

    def _parse_response(self, request: APIRequest[T], response: httpx.Response) -> T:
        cast_to: Any = request.cast_to  # a class or a generic alias such as list[Agent]
        if cast_to is None:
            return cast(T, None)
        try:
            return cast(T, _adapter(cast_to).validate_json(response.content))
        except ValidationError as exc:
            # Without the input values: the body may hold secrets (a newly created key).
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False)
            )
            raise AgentMemError(
                f"Unexpected response to {request.method} {request.path}: {problems}"
            ) from None

    def _redact(self, text: str) -> str:
        return text.replace(self.api_key, REDACTED) if self.api_key in text else text

    def _transport_error(
        self, error: httpx.TransportError, request: httpx.Request
    ) -> tuple[APIConnectionError, Optional[BaseException]]:
        """Our error for a failed send, and the cause to chain (`None` if it would show the key).

        h11 and proxies quote offending header values, the `Authorization` header included.
        """
        wrapped = transport_error(error, request)
        wrapped.message = self._redact(wrapped.message)
        wrapped.args = (wrapped.message,)
        return wrapped, (None if _chain_mentions(error, self.api_key) else error)

    def _status_error(self, response: httpx.Response) -> APIStatusError:
        error = make_status_error(response)
        # A proxy's error page may reflect the request headers back.
        error.message = self._redact(error.message)
        error.args = (error.message,)
        return error


def check_api_key(value: object, *, source: str) -> str:
    """An API key that can travel in an `Authorization` header as given.

    Messages describe the key, never quote it: they end up in logs and tracebacks.
    """
    if not isinstance(value, str):
        raise ArgumentTypeError(f"The API key ({source}) must be a str; got {type(value).__name__}")
    if any(c.isspace() for c in value):
        where = "at its start or end" if value != value.strip() else "inside it"
        raise ArgumentError(
            f"The API key ({source}) contains whitespace {where} (a space, tab or newline); "
            "keys never do: check how it was copied or read (a file read with its newline is "
            "common)."
        )
    if not (value.isascii() and value.isprintable()):
        raise ArgumentError(
            f"The API key ({source}) must be printable ASCII, as every agentmem key is."
        )
    return value


def check_timeout(value: object) -> None:
    if value is None or isinstance(value, httpx.Timeout):
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ArgumentTypeError(
            "timeout must be a number of seconds, an httpx.Timeout or None; "
            f"got {type(value).__name__}"
        )
    if not value > 0 or math.isinf(value):
        raise ArgumentError(f"timeout must be a positive number of seconds; got {value!r}")


def _chain_mentions(error: BaseException, secret: str) -> bool:
    seen: set[int] = set()
    current: Optional[BaseException] = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if secret in str(current) or secret in repr(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_http_url(url: str) -> bool:
    try:
        return httpx.URL(url).scheme in ("http", "https")
    except httpx.InvalidURL:
        return False


def _is_transient(error: httpx.TransportError) -> bool:
    # UnsupportedProtocol and LocalProtocolError are mistakes on our side; a retry repeats them.
    return isinstance(
        error,
        (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError, httpx.ProxyError),
    )


def backoff_delay(retries_taken: int) -> float:
    """Capped exponential backoff, shortened by up to `RETRY_JITTER` at random."""
    delay = min(INITIAL_RETRY_DELAY * 2.0**retries_taken, MAX_RETRY_DELAY)
    return delay * (1 - RETRY_JITTER * random.random())


def conflict_delay(attempts_made: int) -> float:
    """A short random pause before `memory.modify` re-reads after losing a race."""
    # Full jitter: writers that collided once should not collide again in lockstep.
    return random.uniform(
        0, min(MODIFY_CONFLICT_DELAY * 2**attempts_made, MODIFY_MAX_CONFLICT_DELAY)
    )


def parse_retry_after(value: Optional[str], now: Optional[datetime] = None) -> Optional[float]:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date); `None` if unusable."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # HTTP dates are GMT by definition
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def transport_error(error: httpx.TransportError, request: httpx.Request) -> APIConnectionError:
    if isinstance(error, httpx.TimeoutException):
        return APITimeoutError(request)
    return APIConnectionError(f"Connection error: {error}", request=request)


def make_status_error(response: httpx.Response) -> APIStatusError:
    """The exception for a 4xx/5xx answer; the only place status codes become exception types."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 500:
        cls: type[APIStatusError] = InternalServerError
    elif response.status_code == 409 and _error_type(body) in _IDEMPOTENCY_ERRORS:
        cls = _IDEMPOTENCY_ERRORS[_error_type(body)]  # type: ignore[index]
    else:
        cls = _STATUS_ERRORS.get(response.status_code, APIStatusError)
    return cls(response=response, body=body)


def _error_type(body: Any) -> Optional[str]:
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


@functools.cache
def _adapter(cast_to: Any) -> TypeAdapter[Any]:
    return TypeAdapter(cast_to)
