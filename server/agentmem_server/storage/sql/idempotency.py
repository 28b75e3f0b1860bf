"""SQL for idempotency keys (schema.idempotency_keys). Each function is one atomic statement
(or a read), so they run on autocommit connections and hold across server replicas.

A row is a claim until its `status` is set: `owner` runs the request and renews `locked_until`
while it does. Every change to a claim is guarded by `owner`, so a process whose claim was taken
over (its lease ran out) can no longer record or release it.

Every keyed write runs `try_claim` and then `finish` or `release`: those statements are built
once, with named parameters (`p_*`), so SQLAlchemy takes them from its compiled cache without
building a statement tree per call (storage/sql/blocks.py says what that saves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Row,
    bindparam,
    delete,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from .schema import idempotency_keys as keys


@dataclass(frozen=True)
class KeyRecord:
    tenant_id: str
    key: str
    request_hash: str
    body_hash: Optional[str]
    owner: str
    locked_until: int
    created_at: int
    expires_at: int
    status: Optional[int]
    response_headers: Optional[str]
    response_body: Optional[bytes]
    response_encoding: Optional[str]

    @property
    def finished(self) -> bool:
        return self.status is not None


def _record(r: Row[Any]) -> KeyRecord:
    return KeyRecord(
        tenant_id=r.tenant_id,
        key=r.key,
        request_hash=r.request_hash,
        body_hash=r.body_hash,
        owner=r.owner,
        locked_until=r.locked_until,
        created_at=r.created_at,
        expires_at=r.expires_at,
        status=r.status,
        response_headers=r.response_headers,
        response_body=bytes(r.response_body) if r.response_body is not None else None,
        response_encoding=r.response_encoding,
    )


def _where(tenant_id: str, key: str) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    return (keys.c.tenant_id == tenant_id, keys.c.key == key)


_OURS = (
    keys.c.tenant_id == bindparam("p_tenant"),
    keys.c.key == bindparam("p_key"),
    keys.c.owner == bindparam("p_owner"),
    keys.c.status.is_(None),
)
"""Our unfinished claim on the key."""
_CLAIM = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(keys)
    .on_conflict_do_nothing(index_elements=["tenant_id", "key"])
    .returning(keys.c.key)
    for dialect in (postgresql, sqlite)
}
"""By dialect name; the row's values come as the execution's parameters."""
_GET = select(keys).where(
    keys.c.tenant_id == bindparam("p_tenant"), keys.c.key == bindparam("p_key")
)
_RENEW = (
    update(keys)
    .where(*_OURS)
    .values(locked_until=bindparam("p_locked_until", type_=BigInteger))
    .returning(keys.c.key)
)
_FINISH = (
    update(keys)
    .where(*_OURS)
    .values(
        body_hash=bindparam("p_body_hash"),
        status=bindparam("p_status"),
        response_headers=bindparam("p_headers"),
        response_body=bindparam("p_body"),
        response_encoding=bindparam("p_encoding"),
    )
    .returning(keys.c.key)
)
_RELEASE = delete(keys).where(*_OURS)


def try_claim(
    conn: Connection,
    tenant_id: str,
    key: str,
    *,
    request_hash: str,
    owner: str,
    now_us: int,
    locked_until: int,
    expires_at: int,
) -> bool:
    """Insert the claim; False when the key already has a row (finished, running or expired)."""
    stmt = _CLAIM["postgresql" if conn.dialect.name == "postgresql" else "sqlite"]
    values = {
        "tenant_id": tenant_id,
        "key": key,
        "request_hash": request_hash,
        "owner": owner,
        "locked_until": locked_until,
        "created_at": now_us,
        "expires_at": expires_at,
    }
    return conn.execute(stmt, values).first() is not None


def get(conn: Connection, tenant_id: str, key: str) -> Optional[KeyRecord]:
    r = conn.execute(_GET, {"p_tenant": tenant_id, "p_key": key}).first()
    return _record(r) if r else None


def delete_expired(conn: Connection, tenant_id: str, key: str, now_us: int) -> None:
    """Forget the key if its record has expired (another request may reuse it then)."""
    conn.execute(delete(keys).where(*_where(tenant_id, key), keys.c.expires_at <= now_us))


def take_over(
    conn: Connection,
    tenant_id: str,
    key: str,
    *,
    old_owner: str,
    new_owner: str,
    now_us: int,
    locked_until: int,
) -> bool:
    """Claim a running request whose lease ran out (its process is gone); False if we lost a
    race."""
    stmt = (
        update(keys)
        .where(
            *_where(tenant_id, key),
            keys.c.owner == old_owner,
            keys.c.status.is_(None),
            keys.c.locked_until <= now_us,
        )
        .values(owner=new_owner, locked_until=locked_until)
        .returning(keys.c.key)
    )
    return conn.execute(stmt).first() is not None


def renew(conn: Connection, tenant_id: str, key: str, *, owner: str, locked_until: int) -> bool:
    """Extend a running claim's lease; False when it is no longer ours."""
    params = {"p_tenant": tenant_id, "p_key": key, "p_owner": owner, "p_locked_until": locked_until}
    return conn.execute(_RENEW, params).first() is not None


def finish(
    conn: Connection,
    tenant_id: str,
    key: str,
    *,
    owner: str,
    body_hash: Optional[str],
    status: int,
    headers_json: str,
    body: bytes,
    encoding: str,
) -> bool:
    """Store the answer of our claim; False when the claim is no longer ours."""
    params = {
        "p_tenant": tenant_id,
        "p_key": key,
        "p_owner": owner,
        "p_body_hash": body_hash,
        "p_status": status,
        "p_headers": headers_json,
        "p_body": body,
        "p_encoding": encoding,
    }
    return conn.execute(_FINISH, params).first() is not None


def release(conn: Connection, tenant_id: str, key: str, *, owner: str) -> None:
    """Drop our unfinished claim: the request changed nothing, so a retry may run it again."""
    conn.execute(_RELEASE, {"p_tenant": tenant_id, "p_key": key, "p_owner": owner})


def sweep(conn: Connection, now_us: int, *, batch: int = 5000) -> int:
    """Delete up to `batch` expired records; returns how many went."""
    # In batches: one huge DELETE would hold SQLite's write lock for its whole length.
    doomed = select(keys.c.tenant_id, keys.c.key).where(keys.c.expires_at <= now_us).limit(batch)
    stmt = (
        delete(keys).where(tuple_(keys.c.tenant_id, keys.c.key).in_(doomed)).returning(keys.c.key)
    )
    return len(conn.execute(stmt).all())
