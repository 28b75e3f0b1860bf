"""Client defaults and the retry policy, in one place so they can be read and tuned together."""

from __future__ import annotations

API_KEY_ENV = "AGENTMEM_API_KEY"
BASE_URL_ENV = "AGENTMEM_BASE_URL"
DEFAULT_BASE_URL = "http://127.0.0.1:8765"

DEFAULT_TIMEOUT = 60.0
"""Seconds for any single request unless the call passes its own `timeout=`."""
RUN_TIMEOUT = 300.0
"""Floor for `agents.run` / `runs.replay`: they wait on an LLM, possibly several tool rounds."""

DEFAULT_MAX_RETRIES = 2
RETRYABLE_STATUS_CODES = frozenset({429, 500, 502, 503, 504})
"""Only overload and server faults; a 409 is a lost version race, and repeating it cannot win."""
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
RETRY_JITTER = 0.25
"""Each backoff is cut by up to this fraction at random, so clients that failed together spread."""
MAX_RETRY_AFTER = 60.0
"""A server asking to wait longer than this gets no retry: the caller sees the error and decides."""

MODIFY_CONFLICT_DELAY = 0.01
"""Base of the short random pause `memory.modify` takes after losing a race, to avoid lockstep."""
MODIFY_MAX_CONFLICT_DELAY = 0.2
