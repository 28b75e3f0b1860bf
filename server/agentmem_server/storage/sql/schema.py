"""SQL tables for everything except archival vectors (those live in LanceDB).

Timestamps are BIGINT UTC microseconds: exact on SQLite and PostgreSQL alike, so the optimistic
`updated_at` guard compares integers and never trips on float rounding or timezone handling.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

tenants = Table(
    "tenants",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
)

# One row per (tenant, block_type, scope). `agent_id` is '' for the user scope so the unique key
# works (NULLs never collide in a unique constraint).
blocks = Table(
    "memory_blocks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("block_type", String(16), nullable=False),
    Column("agent_id", String(128), nullable=False),
    Column("content", Text, nullable=False, default=""),
    Column("line_count", Integer, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    UniqueConstraint("tenant_id", "block_type", "agent_id", name="uq_block_scope"),
)

# Archival text, one row per line, so appends never rewrite the block and line ranges are an
# indexed range scan. The block row above keeps `line_count` and `content` stays empty.
archival_lines = Table(
    "archival_lines",
    metadata,
    Column(
        "block_id", String(40), ForeignKey("memory_blocks.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("line_no", Integer, primary_key=True),
    Column("text", Text, nullable=False),
    Column("written_at", BigInteger, nullable=False),
)

# Archival writes in flight. LanceDB commits outside the SQL transaction that stores the lines, so
# a write records itself here first (committed at once) and its transaction deletes the row as it
# commits. A row that outlives its write marks a process that died in between; the repair puts
# the scope's index back in step with its committed lines (services/memory.py).
archival_writes = Table(
    "archival_writes_in_flight",
    metadata,
    Column("write_id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("agent_id", String(128), nullable=False),
    Column(
        "kind", String(16), nullable=False
    ),  # "append": drop its rows; "resync": rebuild the scope
    Column("started_at", BigInteger, nullable=False),
    # The server process running the write (`server_processes.id`); NULL in rows of older
    # versions. A write whose process is gone is repaired at once, no grace period needed.
    Column("owner", String(40), nullable=True),
)

# Server processes that may have archival writes in flight: registered at start, beating while
# they run, removed when they stop. services/repair.py judges a write's process dead by this.
server_processes = Table(
    "server_processes",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("heartbeat_at", BigInteger, nullable=False),
)

# Interrupted archival writes whose repair failed (services/repair.py): kept out of the repair
# pass so one bad record never stops it, and still hidden from recall, for someone to look at.
archival_writes_quarantined = Table(
    "archival_writes_quarantined",
    metadata,
    Column("write_id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("agent_id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("quarantined_at", BigInteger, nullable=False),
    Column("error", Text, nullable=False),
)

agents = Table(
    "agents",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("id", String(128), primary_key=True),
    Column("instructions", Text, nullable=False, default=""),
    Column("model", String(256), nullable=True),
    Column("metadata_json", Text, nullable=False, default="{}"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# `agent_id` is '' for a thread not bound to an agent yet (its first run binds it). Columns added
# after the first release carry a server default, so migrations.py can add them to older tables.
threads = Table(
    "threads",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("agent_id", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("title", Text, nullable=True),
    Column("metadata_json", Text, nullable=False, server_default="{}"),
    # 0 on rows made before the column existed: read as created_at (migrations.py backfills).
    Column("updated_at", BigInteger, nullable=False, server_default=text("0")),
    Index("ix_threads_agent", "tenant_id", "agent_id"),
    Index("ix_threads_created", "tenant_id", "created_at", "id"),
)

# The visible transcript. Hidden model input (reminders, tool calls) lives only in
# `runs.record_json`.
messages = Table(
    "messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("thread_id", String(40), ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("run_id", String(40), nullable=True),
    Column("created_at", BigInteger, nullable=False),
    # "message", or "summary": the stand-in for turns a compaction moved to archival memory.
    Column("kind", String(16), nullable=False, server_default="message"),
    UniqueConstraint("thread_id", "seq", name="uq_message_seq"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("tenant_id", String(40), nullable=False),
    Column("agent_id", String(128), nullable=False),
    Column("thread_id", String(40), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("replay_of", String(40), nullable=True),
    # The whole run as JSON (exact model input, tools, steps, output, recalled, usage): it is only
    # ever read back whole, and its shape may grow without migrations.
    Column("record_json", Text, nullable=False),
    Index("ix_runs_agent", "tenant_id", "agent_id"),
)

# Idempotency keys (services/idempotency.py): one row per (tenant, key) a write request carried.
# Claimed before the request runs; holds its answer once it finished, for the retention period.
# `tenant_id` is "@admin" for the admin API, whose caller is the admin key rather than a tenant.
# `key` is a hash of the idempotency key, and the answer's body is sealed with a key derived from
# it: the table alone never reveals what an answer held (memory text, a new API key).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("key", String(64), primary_key=True),
    # sha256 of method, path and query; and of the body, once it was read whole (NULL before).
    Column("request_hash", String(64), nullable=False),
    Column("body_hash", String(64), nullable=True),
    # The claim: who runs the request, and until when that claim holds unless renewed.
    Column("owner", String(40), nullable=False),
    Column("locked_until", BigInteger, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    # The answer, NULL while the request runs. Headers: a JSON list of [name, value] pairs (only
    # content-type and retry hints). Body: nonce + AES-GCM of the (maybe zlib'd) body.
    Column("status", Integer, nullable=True),
    Column("response_headers", Text, nullable=True),
    Column("response_body", LargeBinary, nullable=True),
    Column("response_encoding", String(16), nullable=True),
    Index("ix_idempotency_expires", "expires_at"),
)

# Keyed state (services/state.py), one row per entry. `namespace` is the segments joined by '/'
# ('' for the tenant's root). The primary key is the index of every read: a get or a 4-level
# lookup probes it (`namespace IN (...)`), a prefix listing is a range scan of it in key order.
# Binary ("C") collation on PostgreSQL so that order and the prefix range are code point order,
# as on SQLite, whatever the database's locale.
_STATE_TEXT = String(1040).with_variant(String(1040, collation="C"), "postgresql")
state_entries = Table(
    "state_entries",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("namespace", _STATE_TEXT, primary_key=True),
    Column("key", _STATE_TEXT, primary_key=True),
    Column("value", JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    Column("value_bytes", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=True),
    # The sweeper's: expired rows, oldest first, without reading live ones.
    Index("ix_state_expires", "expires_at"),
)

# The change feed (services/events.py): one row per write, per tenant, numbered by `seq`. The
# counter row is bumped in the write's own transaction and its row lock is held to the commit, so
# a tenant's events commit in `seq` order (a reader that saw seq N has seen every seq below it)
# and a rolled-back write takes its number with it. `pruned_through`: retention removed every
# event up to it.
event_counters = Table(
    "event_counters",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("pruned_through", BigInteger, nullable=False, default=0),
)

memory_events = Table(
    "memory_events",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("seq", BigInteger, primary_key=True),
    Column("at", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    # Namespace segments each followed by "/" ("agent/travel/", "" for the root): a prefix of
    # this string is a namespace prefix, since segments never hold "/".
    Column("namespace", Text, nullable=False),
    Column("scope", String(8), nullable=True),
    Column("agent_id", String(128), nullable=True),
    Column("key", String(255), nullable=False),
    Column("data", Text, nullable=True),
    Column("truncated", Boolean, nullable=False, default=False),
    Index("ix_events_key", "tenant_id", "key", "seq"),
    Index("ix_events_at", "at"),
)

# Per-tenant keyed-state bookkeeping: what the tenant's rows hold (for its quotas: a COUNT over a
# million entries would cost more than the write) and its default TTL (admin API). Every state
# write locks its tenant's row first, in its own transaction, so the counts are exact and a quota
# is never passed by writes racing at its edge.
state_tenants = Table(
    "state_tenants",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("entries", BigInteger, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("default_ttl_us", BigInteger, nullable=True),
)

# Background work that must run in one replica at a time (storage/sql/leases.py).
maintenance_leases = Table(
    "maintenance_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("owner", String(64), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# The document store's side of keyed state (services/store.py, LangGraph's BaseStore): for an
# entry written through /v1/store, its TTL (to restart it on reads) and the vectors of its index
# texts (float32 rows concatenated, made by `model_id`). Same key as `state_entries`; a row whose
# entry is gone (deleted, expired) is never read, and is replaced or removed with the next write.
state_store_index = Table(
    "state_store_index",
    metadata,
    Column("tenant_id", String(40), primary_key=True),
    Column("namespace", _STATE_TEXT, primary_key=True),
    Column("key", _STATE_TEXT, primary_key=True),
    Column("ttl_us", BigInteger, nullable=True),
    Column("model_id", String(200), nullable=True),
    Column("vectors", LargeBinary, nullable=True),
)
