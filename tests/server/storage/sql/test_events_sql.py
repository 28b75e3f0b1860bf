"""The event log's SQL: seqs from concurrent writers (two engines stand in for two replicas), the
glob prefilter, retention's prefix prune."""

from __future__ import annotations

import random
import threading
from fnmatch import fnmatchcase

import pytest

from agentmem_server.storage.sql import events as events_sql
from agentmem_server.storage.sql.events import EventFilter, NewEvent, glob_to_like
from agentmem_server.storage.sql.store import SqlStore


def _append(store: SqlStore, tenant: str, key: str, at_us: int = 1) -> int:
    with store.begin() as conn:
        return events_sql.append_event(
            conn, tenant, NewEvent("state", "set", key), at_us=at_us, data_cap_bytes=1024
        )


def test_two_replicas_writing_at_once_never_share_or_skip_a_seq(database_url: str):
    replicas = [SqlStore.open(database_url), SqlStore.open(database_url)]
    got: dict[str, list[int]] = {"t1": [], "t2": []}
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(store: SqlStore, tenant: str, n: int) -> None:
        try:
            for i in range(n):
                seq = _append(store, tenant, f"k{i}")
                with lock:
                    got[tenant].append(seq)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=(replicas[i % 2], tenant, 25))
        for i, tenant in enumerate(["t1", "t1", "t1", "t1", "t2", "t2"])
    ]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors, errors
        assert sorted(got["t1"]) == list(range(1, 101))
        assert sorted(got["t2"]) == list(range(1, 51))
        with replicas[0].begin() as conn:
            rows = events_sql.read_events(conn, "t1", after=0, through=10**9, limit=1000)
        assert [r.seq for r in rows] == list(range(1, 101))
    finally:
        for store in replicas:
            store.close()


def test_a_rolled_back_append_leaves_nothing(sql_store: SqlStore):
    assert _append(sql_store, "t", "a") == 1
    with pytest.raises(RuntimeError):
        with sql_store.begin() as conn:
            events_sql.append_event(
                conn, "t", NewEvent("state", "set", "b"), at_us=1, data_cap_bytes=1024
            )
            raise RuntimeError("the write failed after its event")
    assert _append(sql_store, "t", "c") == 2
    with sql_store.begin() as conn:
        kept = events_sql.read_events(conn, "t", after=0, through=99, limit=9)
        assert [r.key for r in kept] == ["a", "c"]


def test_data_past_the_cap_drops_the_value_and_says_so(tmp_path):
    store = SqlStore.open(f"sqlite:///{tmp_path / 'e.db'}")
    try:
        with store.begin() as conn:
            event = NewEvent("state", "set", "k", data={"value": "x" * 600, "updated_at": "t"})
            events_sql.append_event(conn, "t", event, at_us=1, data_cap_bytes=256)
            (row,) = events_sql.read_events(conn, "t", after=0, through=9, limit=9)
        assert row.truncated and row.data == {"updated_at": "t"}
    finally:
        store.close()


def test_glob_prefilter_passes_everything_the_glob_matches_randomized():
    rng = random.Random(7)
    alphabet = "ab_%\\*?[]!.-Aé"
    for _ in range(3000):
        pattern = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
        key = "".join(rng.choice("ab_%\\[]!.-Aé") for _ in range(rng.randint(0, 6)))
        if fnmatchcase(key, pattern):
            assert _like(glob_to_like(pattern), key), (pattern, key)


def _like(like: str, s: str) -> bool:
    """LIKE with escape `\\`, case-sensitive (the stricter of the two databases)."""
    import re

    out, i = [], 0
    while i < len(like):
        c = like[i]
        if c == "\\":
            i += 1
            out.append(re.escape(like[i]))
        elif c == "%":
            out.append(".*")
        elif c == "_":
            out.append(".")
        else:
            out.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(out), s, re.S) is not None


def test_filter_matches_exactly():
    row = events_sql.EventRow(
        "t", 1, 1, "state", "set", ("agent", "a1"), None, None, "User_1.prefs", None, False
    )
    assert EventFilter(patterns=("User_*.prefs",)).matches(row)
    assert not EventFilter(patterns=("user_*",)).matches(row)
    assert EventFilter(namespace=("agent",)).matches(row)
    assert not EventFilter(namespace=("agent", "a")).matches(row)
    assert not EventFilter(kinds=("core",)).matches(row)


def test_prune_removes_a_prefix_and_records_where_it_ends(sql_store: SqlStore):
    for at in (10, 20, 30, 40):
        _append(sql_store, "t", "k", at_us=at)
    _append(sql_store, "u", "k", at_us=50)
    with sql_store.begin() as conn:
        assert events_sql.prune_before(conn, 35) == 3
        assert events_sql.log_bounds(conn, "t") == events_sql.LogBounds(4, 3)
        assert events_sql.log_bounds(conn, "u") == events_sql.LogBounds(1, 0)
        kept = events_sql.read_events(conn, "t", after=0, through=99, limit=9)
        assert [r.seq for r in kept] == [4]
    assert _append(sql_store, "t", "k", at_us=60) == 5  # numbers are never reused
