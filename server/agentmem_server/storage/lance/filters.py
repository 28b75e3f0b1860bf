"""LanceDB filter expressions: the only place the archival store writes them.

LanceDB filters are SQL-like strings; every value in one goes through `sql_str` or is an int.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional


def sql_str(value: str) -> str:
    """A string literal for a LanceDB filter."""
    return "'" + value.replace("'", "''") + "'"


def of_block(block_id: str) -> str:
    return f"block_id = {sql_str(block_id)}"


def of_writes(write_ids: Iterable[str]) -> str:
    """Rows stored by any of these writes (one `add` or `replace` each)."""
    return " OR ".join(f"write_id = {sql_str(w)}" for w in write_ids)


def of_block_except_write(block_id: str, write_id: str) -> str:
    """The block's rows that another write than `write_id` stored (what a replace supersedes)."""
    return f"{of_block(block_id)} AND write_id != {sql_str(write_id)}"


def written_between(after_us: Optional[int], before_us: Optional[int]) -> Optional[str]:
    """Rows written at or after `after_us` and before `before_us` (UTC microseconds); None for
    no bound, so searches without one can use the in-memory copies."""
    parts = []
    if after_us is not None:
        parts.append(f"written_at >= {int(after_us)}")
    if before_us is not None:
        parts.append(f"written_at < {int(before_us)}")
    return " AND ".join(parts) or None
