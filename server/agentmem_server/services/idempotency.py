"""Idempotency keys: a write sent again with the same key gets the first answer, not a second run.

The transport (api/idempotency.py) asks `begin` before it runs a request that carries a key:
- a new key is claimed (`Claim`): the caller runs the request, then `finish`es (stores the
  answer) or `release`s (nothing happened; a retry may run it);
- a finished key gives back its stored answer (`StoredAnswer`) for the caller to replay;
- a key whose first request is still running makes `begin` wait up to `wait_s`, then raise
  `StillRunning`; a key used for another request raises `KeyReused`.
Records live in SQL, so every replica sees them; a claim holds a lease that `keep_alive` renews
while the request runs. A record holds a hash of the key, and the answer's body sealed with a key
derived from the idempotency key (AES-GCM): an answer holds memory text or a new API key, and the
table must not keep those readable after the memory is deleted or the key is shown. When the
lease runs out the claiming process is taken to be dead: a request that is one atomic write is
run again (`rerun_abandoned`), anything longer (a run that called the model, an import) raises
`Interrupted`. docs/architecture.md has the whole design.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import os
import secrets
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional, TypeVar, Union

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..storage.base import now_micros
from ..storage.sql import idempotency as sql
from ..storage.sql.store import SqlStore

log = logging.getLogger("agentmem.idempotency")

T = TypeVar("T")

ADMIN_SCOPE = "@admin"
"""Keys sent to the admin API are the admin key's own, kept apart from every tenant's."""
_COMPRESS_FROM = 1024
_FIRST_POLL_S = 0.05
_MAX_POLL_S = 0.5


@dataclass(frozen=True)
class Claim:
    """The right to run a request: ours until `finish`, `release`, or a lease that ran out."""

    tenant_id: str
    key: SealedKey
    owner: str


@dataclass(frozen=True)
class SealedKey:
    """An idempotency key as stored (`id`, a hash) and the key that seals its answer."""

    id: str
    secret: bytes = field(repr=False)

    @classmethod
    def of(cls, tenant_id: str, key: str) -> SealedKey:
        raw = key.encode("utf-8", "surrogateescape")
        return cls(
            id=hashlib.sha256(b"agentmem idempotency key\0" + raw).hexdigest(),
            secret=hashlib.sha256(
                b"agentmem idempotency answer\0" + tenant_id.encode() + b"\0" + raw
            ).digest(),
        )

    def seal(self, tenant_id: str, body: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self.secret).encrypt(nonce, body, self._aad(tenant_id))

    def open(self, tenant_id: str, sealed: bytes) -> bytes:
        return AESGCM(self.secret).decrypt(sealed[:12], sealed[12:], self._aad(tenant_id))

    def _aad(self, tenant_id: str) -> bytes:
        # Binds the sealed answer to its row: it cannot be moved to another tenant or key.
        return tenant_id.encode() + b"\0" + self.id.encode()


@dataclass(frozen=True)
class StoredAnswer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    body_hash: Optional[str]
    """Hash of the first request's body, or `None` if it was never read whole."""


class KeyReused(Exception):
    """The key came with another request (method, path, query or body) than its first one."""


class StillRunning(Exception):
    def __init__(self, retry_after_s: int):
        super().__init__(f"still running; retry in {retry_after_s}s")
        self.retry_after_s = retry_after_s


class Interrupted(Exception):
    """The first request's process died before it answered, and re-running it is not safe."""


class IdempotencyService:
    def __init__(self, store: SqlStore, *, retention_s: float, lease_s: float, wait_s: float):
        self._store = store
        self.retention_us = int(retention_s * 1_000_000)
        self.lease_s = lease_s
        self.wait_s = wait_s
        self._sweeper: Optional[asyncio.Task[None]] = None
        self._stop_sweeping = asyncio.Event()

    async def _sql(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self._store.run_autocommit(fn, *args, **kwargs)

    def _lease_end(self, now_us: int) -> int:
        return now_us + int(self.lease_s * 1_000_000)

    async def begin(
        self, tenant_id: str, key: str, request_hash: str, *, rerun_abandoned: bool
    ) -> Union[Claim, StoredAnswer]:
        """Claim the key for this request, or give its first answer (waiting up to `wait_s`
        for one that is running). Raises `KeyReused`, `StillRunning` or `Interrupted`."""
        sealed = SealedKey.of(tenant_id, key)
        owner = "own_" + secrets.token_hex(8)
        deadline = time.monotonic() + self.wait_s
        poll = _FIRST_POLL_S
        while True:
            now = now_micros()
            claimed = await self._sql(
                sql.try_claim,
                tenant_id,
                sealed.id,
                request_hash=request_hash,
                owner=owner,
                now_us=now,
                locked_until=self._lease_end(now),
                expires_at=now + self.retention_us,
            )
            if claimed:
                return Claim(tenant_id, sealed, owner)
            record = await self._sql(sql.get, tenant_id, sealed.id)
            if record is None:
                continue  # released between our two statements: claim it now
            if record.expires_at <= now:
                await self._sql(sql.delete_expired, tenant_id, sealed.id, now)
                continue
            if record.request_hash != request_hash:
                raise KeyReused
            if record.finished:
                return _stored(record, sealed)
            if record.locked_until <= now:
                if not rerun_abandoned:
                    raise Interrupted
                taken = await self._sql(
                    sql.take_over,
                    tenant_id,
                    sealed.id,
                    old_owner=record.owner,
                    new_owner=owner,
                    now_us=now,
                    locked_until=self._lease_end(now),
                )
                if taken:
                    log.warning(
                        "idempotency key %s of %s: the server running its first request "
                        "stopped; running it again",
                        sealed.id[:12],
                        tenant_id,
                    )
                    return Claim(tenant_id, sealed, owner)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise StillRunning(max(1, math.ceil((record.locked_until - now) / 1_000_000)))
            await asyncio.sleep(min(poll, left))
            poll = min(poll * 2, _MAX_POLL_S)

    async def keep_alive(self, claim: Claim) -> None:
        """Renew the claim's lease until cancelled (run it beside the request)."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                ours = await self._sql(
                    sql.renew,
                    claim.tenant_id,
                    claim.key.id,
                    owner=claim.owner,
                    locked_until=self._lease_end(now_micros()),
                )
            except Exception:  # noqa: BLE001 - the next beat tries again; the lease covers two misses
                log.exception("could not renew the claim on idempotency key %s", claim.key.id[:12])
                continue
            if not ours:
                log.error(
                    "the claim on idempotency key %s of %s was taken over while its request ran",
                    claim.key.id[:12],
                    claim.tenant_id,
                )
                return

    async def finish(
        self,
        claim: Claim,
        *,
        status: int,
        headers: list[tuple[str, str]],
        body: bytes,
        body_hash: Optional[str],
    ) -> bool:
        """Store the answer; False if the claim was no longer ours (then nothing is stored)."""
        encoding, packed = (
            ("zlib", zlib.compress(body)) if len(body) >= _COMPRESS_FROM else ("identity", body)
        )
        ours = await self._sql(
            sql.finish,
            claim.tenant_id,
            claim.key.id,
            owner=claim.owner,
            body_hash=body_hash,
            status=status,
            headers_json=json.dumps(headers),
            body=claim.key.seal(claim.tenant_id, packed),
            encoding=encoding,
        )
        if not ours:
            log.error(
                "idempotency key %s of %s: the claim was taken over before the answer was stored",
                claim.key.id[:12],
                claim.tenant_id,
            )
        return ours

    async def release(self, claim: Claim) -> None:
        await self._sql(sql.release, claim.tenant_id, claim.key.id, owner=claim.owner)

    async def sweep(self) -> int:
        """Delete expired records; returns how many."""
        total = 0
        while True:
            removed = await self._sql(sql.sweep, now_micros())
            total += removed
            if removed == 0:
                return total

    def start_sweeping(self, interval_s: float) -> None:
        stop = self._stop_sweeping = asyncio.Event()

        async def loop() -> None:
            while not stop.is_set():
                try:
                    removed = await self.sweep()
                    if removed:
                        log.info("swept %d expired idempotency keys", removed)
                except Exception:  # noqa: BLE001 - retried on the next pass
                    log.exception("sweeping expired idempotency keys failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), interval_s)

        self._sweeper = asyncio.get_running_loop().create_task(
            loop(), name="agentmem-idempotency-sweep"
        )

    async def close(self) -> None:
        # Stopped rather than cancelled: a sweep cut off mid-statement would leave its SQL
        # connection checked out of a pool that is about to be disposed.
        if self._sweeper is not None:
            self._stop_sweeping.set()
            await self._sweeper


def _stored(record: sql.KeyRecord, key: SealedKey) -> StoredAnswer:
    try:
        body = key.open(record.tenant_id, record.response_body or b"")
    except InvalidTag:
        # Only a row tampered with, or copied from another tenant or key, fails to open.
        raise KeyReused from None
    if record.response_encoding == "zlib":
        body = zlib.decompress(body)
    headers = [(str(k), str(v)) for k, v in json.loads(record.response_headers or "[]")]
    assert record.status is not None
    return StoredAnswer(
        status=record.status, headers=headers, body=body, body_hash=record.body_hash
    )
