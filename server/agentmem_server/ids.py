"""Ids: one format for everything the server names, `<prefix>_<random hex>`.

    new_id("blk")    -> "blk_3f9c0a1b2c3d4e5f60718293"

The prefix says what an id names (`ten` tenant, `key` API key, `blk` block, `thr` thread, `msg`
message, `run` run, `wr` archival write, `req` request); the hex is random, so ids reveal nothing
and need no coordination between replicas. Ids are opaque everywhere else: nothing parses them,
so ids stored in an older format stay valid.
"""

from __future__ import annotations

import secrets

TENANT = "ten"
API_KEY = "key"
BLOCK = "blk"
THREAD = "thr"
MESSAGE = "msg"
RUN = "run"
ARCHIVAL_WRITE = "wr"
REQUEST = "req"
PROCESS = "prc"
"""A server process or CLI run: the holder of a lease (storage/sql/leases.py) and the owner of
its archival writes in flight (services/repair.py)."""

RANDOM_BYTES = 12
"""96 random bits: collisions are out of reach at any scale this server meets."""
SHORT_RANDOM_BYTES = 8
"""For ids repeated on every archival row (write ids live inside chunk ids): 64 bits, unique
among one scope's writes."""


def new_id(prefix: str, *, random_bytes: int = RANDOM_BYTES) -> str:
    return f"{prefix}_{secrets.token_hex(random_bytes)}"


def new_write_id() -> str:
    """Tags the archival rows of one write, so a failed or interrupted write can be taken back."""
    return new_id(ARCHIVAL_WRITE, random_bytes=SHORT_RANDOM_BYTES)
