"""`search_rows`: a LanceDB search's rows without `to_arrow()`'s extra round trips, and the same
rows in the same order as `to_arrow()` gives."""

from __future__ import annotations

import lancedb
import numpy as np
import pyarrow as pa
import pytest
from lancedb.index import FTS, HnswSq

from agentmem_server.storage.lance.store import search_rows

WORDS = ["apple", "river", "engine", "garden", "planet", "violin", "copper", "meadow"]


@pytest.fixture
async def table(tmp_path):
    rng = np.random.default_rng(5)
    n = 3000
    vectors = rng.standard_normal((n, 16)).astype(np.float32)
    rows = pa.table(
        {
            "id": pa.array([f"c{i}" for i in range(n)]),
            "text": pa.array([" ".join(rng.choice(WORDS, 5)) for _ in range(n)]),
            "written_at": pa.array(np.arange(n, dtype=np.int64)),
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.ravel()), 16),
        }
    )
    db = await lancedb.connect_async(str(tmp_path))
    tbl = await db.create_table("t", rows)
    await tbl.create_index("text", config=FTS(with_position=False))
    yield tbl
    tbl.close()


def _queries(tbl, v: np.ndarray):
    yield (
        "fts",
        lambda: (
            tbl.query()
            .nearest_to_text("violin river", columns="text")
            .select(["id", "text", "vector", "_score"])
            .limit(20)
        ),
    )
    yield (
        "fts, filtered",
        lambda: (
            tbl.query()
            .nearest_to_text("copper", columns="text")
            .select(["id", "_score"])
            .where("written_at >= 1000")
            .limit(50)
        ),
    )
    yield (
        "fts, fewer rows than the limit",
        lambda: (
            tbl.query()
            .nearest_to_text("nothingmatches meadow", columns="text")
            .select(["id", "_score"])
            .where("written_at < 40")
            .limit(500)
        ),
    )
    yield (
        "flat vector",
        lambda: (
            tbl.query().nearest_to(v).distance_type("cosine").select(["id", "_distance"]).limit(5)
        ),
    )
    yield (
        "vector, filtered",
        lambda: (
            tbl.query()
            .nearest_to(v)
            .distance_type("cosine")
            .select(["id", "vector", "_distance"])
            .where("written_at < 2000")
            .limit(10)
        ),
    )


async def test_the_same_rows_as_to_arrow(table) -> None:
    v = np.random.default_rng(9).standard_normal(16).astype(np.float32)
    for label, make in _queries(table, v):
        expected = await make().to_arrow()
        limit = make().to_query_object().limit
        got = await search_rows(make(), limit)
        assert got.equals(expected), label
        assert got.num_rows > 0, label


async def test_the_same_rows_through_an_ann_index(table) -> None:
    await table.create_index("vector", config=HnswSq(distance_type="cosine", num_partitions=1))
    v = np.random.default_rng(11).standard_normal(16).astype(np.float32)

    def make():
        return (
            table.query()
            .nearest_to(v)
            .distance_type("cosine")
            .select(["id", "vector", "_distance"])
            .limit(10)
            .ef(64)
        )

    assert (await search_rows(make(), 10)).equals(await make().to_arrow())


async def test_no_schema_read_per_search(table, monkeypatch: pytest.MonkeyPatch) -> None:
    """What it saves: `to_arrow()` reads the table's schema on every search (a round trip to
    LanceDB's threads); `search_rows` does not."""
    from lancedb.table import AsyncTable

    reads = []
    schema = AsyncTable.schema

    async def counted(self):
        reads.append(1)
        return await schema(self)

    monkeypatch.setattr(AsyncTable, "schema", counted)
    v = np.random.default_rng(9).standard_normal(16).astype(np.float32)
    for label, make in _queries(table, v):
        await make().to_arrow()
        assert reads, label  # the round trip is there without it
        reads.clear()
        await search_rows(make(), make().to_query_object().limit)
        assert not reads, label
