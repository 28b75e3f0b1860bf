"""The SQL block store, run on SQLite and on PostgreSQL by the `database_url` fixture."""

from __future__ import annotations

import threading

from sqlalchemy import select

from agentmem_server.storage.sql import blocks as sql
from agentmem_server.storage.sql import tenants as tenant_sql
from agentmem_server.storage.sql.schema import api_keys
from agentmem_server.storage.sql.store import SqlStore


def test_create_then_second_create_is_refused(sql_store: SqlStore):
    with sql_store.begin() as conn:
        first = sql.insert_block_if_missing(conn, "t1", "core", "", "a", 1, 1_000)
        second = sql.insert_block_if_missing(conn, "t1", "core", "", "b", 1, 2_000)
    assert first is not None and first.content == "a"
    assert second is None
    with sql_store.begin() as conn:
        assert sql.get_block(conn, "t1", "core", "").content == "a"


def test_guarded_update_applies_only_on_matching_timestamp(sql_store: SqlStore):
    with sql_store.begin() as conn:
        created = sql.insert_block_if_missing(conn, "t1", "core", "", "v1", 1, 1_000)
        stale = sql.guarded_update(
            conn,
            "t1",
            "core",
            "",
            expected_updated_at=999,
            content="lost",
            line_count=1,
            now_us=5_000,
        )
        fresh = sql.guarded_update(
            conn,
            "t1",
            "core",
            "",
            expected_updated_at=created.updated_at,
            content="v2",
            line_count=1,
            now_us=5_000,
        )
        current = sql.get_block(conn, "t1", "core", "")
    assert stale is None
    assert fresh is not None and fresh.updated_at == 5_000
    assert current.content == "v2"


def test_updated_at_strictly_increases_within_one_microsecond_and_on_clock_skew(
    sql_store: SqlStore,
):
    with sql_store.begin() as conn:
        row = sql.insert_block_if_missing(conn, "t1", "core", "", "v0", 1, 7_000)
        seen = [row.updated_at]
        for i, clock in enumerate(
            [7_000, 7_000, 6_000]
        ):  # same µs twice, then the clock steps back
            row = sql.guarded_update(
                conn,
                "t1",
                "core",
                "",
                expected_updated_at=row.updated_at,
                content=f"v{i}",
                line_count=1,
                now_us=clock,
            )
            seen.append(row.updated_at)
    assert seen == [7_000, 7_001, 7_002, 7_003]


def test_core_append_respects_limit_and_changes_nothing_when_refused(sql_store: SqlStore):
    with sql_store.begin() as conn:
        sql.insert_block_if_missing(conn, "t1", "core", "a1", "12345", 1, 1_000)
        ok = sql.append_core_text(
            conn, "t1", "core", "a1", text="678", added_lines=1, limit_chars=9, now_us=2_000
        )
        refused = sql.append_core_text(
            conn, "t1", "core", "a1", text="9", added_lines=1, limit_chars=9, now_us=3_000
        )
        current = sql.get_block(conn, "t1", "core", "a1")
    assert ok.content == "12345\n678" and ok.line_count == 2
    assert refused is None
    assert current.content == "12345\n678" and current.updated_at == 2_000


def test_scopes_and_tenants_are_separate_rows(sql_store: SqlStore):
    with sql_store.begin() as conn:
        for tenant, agent in [("t1", ""), ("t1", "a1"), ("t2", "")]:
            sql.insert_block_if_missing(conn, tenant, "core", agent, f"{tenant}/{agent}", 1, 1_000)
        listed = sql.list_blocks(conn, "t1", ["", "a1"])
        only_user = sql.list_blocks(conn, "t1", [""])
    assert sorted(b.content for b in listed) == ["t1/", "t1/a1"]
    assert [b.content for b in only_user] == ["t1/"]


def test_concurrent_archival_reservations_get_disjoint_line_ranges(sql_store: SqlStore):
    with sql_store.begin() as conn:
        block = sql.insert_block_if_missing(conn, "t1", "archival", "a1", "", 0, 1_000)
    ranges: list[tuple[int, int]] = []
    lock = threading.Lock()

    def append(n: int) -> None:
        for _ in range(5):
            with sql_store.begin() as conn:
                row = sql.reserve_archival_lines(conn, block.id, n, 2_000)
                first = row.line_count - n + 1
                sql.insert_lines(
                    conn, block.id, first, [f"line {first + i}" for i in range(n)], row.updated_at
                )
            with lock:
                ranges.append((first, row.line_count))

    threads = [threading.Thread(target=append, args=(n,)) for n in (1, 2, 3, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    covered = sorted(line for a, b in ranges for line in range(a, b + 1))
    assert covered == list(range(1, 5 * (1 + 2 + 3 + 4) + 1))
    with sql_store.begin() as conn:
        lines = sql.read_lines(conn, block.id, 1, None)
    assert lines == [f"line {i}" for i in range(1, 51)]


def test_delete_removes_block_and_its_lines(sql_store: SqlStore):
    with sql_store.begin() as conn:
        block = sql.insert_block_if_missing(conn, "t1", "archival", "", "", 2, 1_000)
        sql.insert_lines(conn, block.id, 1, ["x", "y"], 1_000)
        deleted = sql.delete_block(conn, "t1", "archival", "")
        again = sql.delete_block(conn, "t1", "archival", "")
        lines = sql.read_lines(conn, block.id, 1, None)
    assert deleted == block.id and again is None and lines == []


def test_keys_are_stored_hashed_and_revocation_is_immediate(sql_store: SqlStore):
    with sql_store.begin() as conn:
        tenant, created = tenant_sql.get_or_create_tenant(conn, "acme", 1_000)
        _, created_again = tenant_sql.get_or_create_tenant(conn, "acme", 2_000)
        key, secret = tenant_sql.create_key(conn, tenant.id, 1_000)
    assert created and not created_again
    with sql_store.begin() as conn:
        stored = [r.key_hash for r in conn.execute(select(api_keys))]
        assert secret not in stored and tenant_sql.hash_key(secret) in stored
        assert tenant_sql.tenant_for_key(conn, secret) == tenant.id
        assert tenant_sql.revoke_key(conn, key.id, 3_000)
        assert tenant_sql.tenant_for_key(conn, secret) is None
        assert not tenant_sql.revoke_key(conn, "key_missing", 3_000)
