"""AgentmemStore / AsyncAgentmemStore against a real server (uvicorn, SQLite and PostgreSQL), with
LangGraph's own InMemoryStore as the oracle: the same operations must give the same answers.
Then what InMemoryStore has not: TTL, semantic search by the server's model, tenancy."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph.store.base import InvalidNamespaceError, Item
from langgraph.store.memory import InMemoryStore

import agentmem
from agentmem.integrations.langgraph import (
    AgentmemStore,
    AsyncAgentmemStore,
    decode_label,
    encode_label,
)
from agentmem_server import create_app

from support import ADMIN_KEY, HTTP_TIMEOUT_S, auth, make_settings, new_tenant_key, serve_in_thread


class Served:
    def __init__(self, url: str):
        self.url = url

    def key(self, tenant: str) -> str:
        return new_tenant_key(self.url, tenant)


@pytest.fixture
def served(tmp_path: Path, database_url: str) -> Iterator[Served]:
    with serve_in_thread(create_app(make_settings(tmp_path, database_url=database_url))) as url:
        yield Served(url)


@pytest.fixture
def client(served: Served) -> Iterator[agentmem.Client]:
    with agentmem.Client(api_key=served.key("acme"), base_url=served.url) as c:
        yield c


def same(items: list[Item] | Item | None) -> Any:
    """What both stores must agree on (timestamps are each store's own)."""
    if items is None:
        return None
    if isinstance(items, Item):
        return (items.namespace, items.key, items.value)
    return [same(i) for i in items]


def unordered(items: list[Any]) -> list[Any]:
    return sorted(same(items), key=repr)


def test_labels_round_trip_and_stay_readable() -> None:
    for label in ["users", "u-1:a@b", "a b", "ünïcode", "*", "x" * 18, "tab\there", "/"]:
        encoded = encode_label(label)
        assert decode_label(encoded) == label
        assert set(encoded) <= set(
            "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@-"
        )
    assert encode_label("user_1") == "user_1"
    with pytest.raises(InvalidNamespaceError):
        encode_label("é" * 20)  # 140 characters once encoded


def test_put_get_delete_search_and_namespaces_agree_with_langgraphs_store(
    client: agentmem.Client,
) -> None:
    ours, theirs = AgentmemStore(client), InMemoryStore()
    rng = random.Random(7)
    namespaces = [
        ("users", "u1", "prefs"),
        ("users", "u1", "notes"),
        ("users", "u2", "prefs"),
        ("docs",),
        ("docs", "drafts", "v1"),
        ("a b", "ü"),
    ]
    for i in range(40):
        ns = rng.choice(namespaces)
        value = {
            "n": i,
            "kind": rng.choice(["note", "fact", "task"]),
            "score": rng.choice([1, 2.5, 4]),
            "tags": rng.choice([["x"], ["x", "y"], []]),
            "meta": {"lang": rng.choice(["en", "de"])},
        }
        for store in (ours, theirs):
            store.put(ns, f"k{i % 15}", value)
    for store in (ours, theirs):
        store.delete(("users", "u1", "prefs"), "k3")
        store.delete(("users", "u1", "prefs"), "never-there")

    for ns in namespaces:
        for key in ["k0", "k3", "k7", "k14", "nope"]:
            assert same(ours.get(ns, key)) == same(theirs.get(ns, key)), (ns, key)

    filters: list[dict[str, Any] | None] = [
        None,
        {"kind": "note"},
        {"kind": "task", "meta": {"lang": "de"}},
        {"score": {"$gt": 2}},
        {"score": {"$gte": 2.5, "$lt": 4}},
        {"kind": {"$ne": "fact"}},
        {"tags": ["x", "y"]},
        {"n": {"$eq": 5}},
    ]
    for prefix in [("users",), ("users", "u1"), ("docs",), ("a b",), ("nobody",)]:
        for f in filters:
            mine = ours.search(prefix, filter=f, limit=100)
            want = theirs.search(prefix, filter=f, limit=100)
            assert unordered(mine) == unordered(want), (prefix, f)
    # Pages: same set overall, no item twice (order is most recent first here).
    paged = [it for off in range(0, 40, 4) for it in ours.search(("users",), limit=4, offset=off)]
    assert unordered(paged) == unordered(theirs.search(("users",), limit=100))

    for kwargs in [
        {},
        {"prefix": ("users",)},
        {"prefix": ("users", "*", "prefs")},
        {"suffix": ("prefs",)},
        {"suffix": ("*", "v1")},
        {"max_depth": 1},
        {"prefix": ("users",), "max_depth": 2},
        {"limit": 2, "offset": 1},
    ]:
        assert ours.list_namespaces(**kwargs) == theirs.list_namespaces(**kwargs), kwargs


def test_batch_answers_in_order(client: agentmem.Client) -> None:
    from langgraph.store.base import GetOp, ListNamespacesOp, PutOp, SearchOp

    store = AgentmemStore(client)
    results = store.batch(
        [
            PutOp(("b",), "k", {"v": 1}),
            GetOp(("b",), "k"),
            SearchOp(("b",)),
            ListNamespacesOp(),
            PutOp(("b",), "k", None),
            GetOp(("b",), "k"),
        ]
    )
    assert results[0] is None
    assert same(results[1]) == (("b",), "k", {"v": 1})
    assert same(results[2]) == [(("b",), "k", {"v": 1})]
    assert results[3] == [("b",)]
    assert results[4] is None and results[5] is None


def test_items_are_keyed_state_of_the_tenant(served: Served, client: agentmem.Client) -> None:
    store = AgentmemStore(client)
    store.put(("memories", "u1"), "pref", {"text": "window seat"})
    item = store.get(("memories", "u1"), "pref")
    assert item is not None and item.updated_at.tzinfo is not None
    raw = httpx.get(
        f"{served.url}/v1/state/entries/pref",
        params={"namespace": "langgraph/memories/u1"},
        headers=auth(client.api_key),
        timeout=HTTP_TIMEOUT_S,
    )
    assert raw.status_code == 200, raw.text
    assert raw.json()["value"] == {"text": "window seat"}

    with agentmem.Client(api_key=served.key("other"), base_url=served.url) as stranger:
        theirs = AgentmemStore(stranger)
        assert theirs.get(("memories", "u1"), "pref") is None
        assert theirs.search(("memories",)) == []
        assert theirs.list_namespaces() == []
        theirs.delete(("memories", "u1"), "pref")
    assert store.get(("memories", "u1"), "pref") is not None


def test_ttl_expires_items_and_reads_restart_it(served: Served, client: agentmem.Client) -> None:
    store = AgentmemStore(client, ttl={"default_ttl": 1.0, "refresh_on_read": True})
    store.put(("t",), "short", {"v": 1})
    store.put(("t",), "forever", {"v": 2}, ttl=None)
    first = _expiry(served, client, "short")
    assert first is not None and _expiry(served, client, "forever") is None
    store.get(("t",), "short")  # refreshes (refresh_on_read)
    assert _expiry(served, client, "short") > first
    before = _expiry(served, client, "short")
    store.get(("t",), "short", refresh_ttl=False)
    assert _expiry(served, client, "short") == before


def _expiry(served: Served, client: agentmem.Client, key: str) -> Any:
    r = httpx.get(
        f"{served.url}/v1/state/entries/{key}",
        params={"namespace": "langgraph/t"},
        headers=auth(client.api_key),
        timeout=HTTP_TIMEOUT_S,
    )
    assert r.status_code == 200, r.text
    return r.json()["expires_at"]


async def test_async_store_round_trip(served: Served) -> None:
    async with agentmem.AsyncClient(api_key=served.key("acme"), base_url=served.url) as c:
        store = AsyncAgentmemStore(c)
        await store.aput(("a", "b"), "k", {"text": "hello"})
        got = await store.aget(("a", "b"), "k")
        assert got is not None and got.value == {"text": "hello"}
        assert [i.key for i in await store.asearch(("a",))] == ["k"]
        assert await store.alist_namespaces(prefix=("a",)) == [("a", "b")]
        await store.adelete(("a", "b"), "k")
        assert await store.aget(("a", "b"), "k") is None
        with pytest.raises(RuntimeError, match="async methods"):
            store.get(("a",), "k")


def test_bad_input_is_refused_with_the_field(client: agentmem.Client) -> None:
    store = AgentmemStore(client)
    with pytest.raises(InvalidNamespaceError):
        store.put(("a.b",), "k", {"v": 1})  # LangGraph's own rule
    with pytest.raises(InvalidNamespaceError):
        store.put(tuple(f"l{i}" for i in range(8)), "k", {"v": 1})  # 7 labels under the root
    with pytest.raises(agentmem.UnprocessableEntityError) as bad:
        store.search(("a",), filter={"n": {"$near": 3}})
    assert bad.value.body["error"]["field"] == "filter.n"  # type: ignore[index]


@pytest.mark.slow
def test_semantic_search_ranks_a_paraphrase_first_with_the_servers_model(start_server) -> None:
    from agentmem_server.settings import DEFAULT_EMBEDDING_MODEL

    # A server process (ready within 120 s): loading MiniLM can outlast an in-thread start.
    server = start_server(embedding_model=DEFAULT_EMBEDDING_MODEL, admin_key=ADMIN_KEY)
    url = server.url
    served = Served(url)
    with agentmem.Client(api_key=served.key("acme"), base_url=url) as c:
        store = AgentmemStore(c, index={"fields": ["text"]})
        facts = {
            "seat": "Ana always books a window seat when she flies",
            "food": "Ana is vegetarian and avoids mushrooms",
            "pet": "Ana's dog is called Pixel and is three years old",
            "job": "Ana works as a structural engineer in Porto",
            "music": "Ana plays the cello in an amateur orchestra",
        }
        for key, text in facts.items():
            store.put(("memories", "ana"), key, {"text": text, "kind": "fact"})
        store.put(("memories", "ana"), "raw", {"text": "not indexed"}, index=False)
        store.put(
            ("memories", "ana"),
            "nested",
            {"notes": [{"body": "Ana hates early flights"}]},
            index=["notes[*].body"],
        )

        hits = store.search(("memories",), query="what does she eat?", limit=3)
        assert [h.key for h in hits][0] == "food"
        assert hits[0].score is not None and hits[0].score > hits[1].score  # type: ignore[operator]
        assert store.search(("memories",), query="her instrument", limit=1)[0].key == "music"
        assert (
            store.search(("memories",), query="which animal does she own", limit=1)[0].key == "pet"
        )
        assert store.search(("memories",), query="morning departures", limit=1)[0].key == "nested"
        # A filter applies to the ranking; items without a vector come after, unscored.
        filtered = store.search(("memories",), query="plane", filter={"kind": "fact"}, limit=2)
        assert [h.key for h in filtered] == ["seat", filtered[1].key] and filtered[1].key != "raw"
        every = store.search(("memories",), query="plane", limit=10)
        assert [h.key for h in every][-1] == "raw" and every[-1].score is None
        # Re-putting without an index drops the item's vectors.
        store.put(("memories", "ana"), "food", {"text": "gone from the index"}, index=False)
        assert store.search(("memories",), query="what does she eat?", limit=1)[0].key != "food"

    with agentmem.Client(api_key=served.key("other"), base_url=url) as other:
        assert AgentmemStore(other).search(("memories",), query="what does she eat?") == []
