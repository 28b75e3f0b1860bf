"""Threads as a resource over HTTP (DESIGN §12), on SQLite and PostgreSQL: create, list, get,
update, delete, message pages, add_messages, delete_messages, runs on created threads, tenant
isolation and bad input."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from agentmem_server import Settings
from agentmem_server.storage.sql.schema import messages, runs, threads

from support import ScriptedLLM, auth, scripted_llm_settings


@pytest.fixture
def app_settings(tmp_path: Path, database_url: str) -> Settings:
    return scripted_llm_settings(tmp_path, database_url=database_url)


@pytest.fixture
def h(http: TestClient, new_key) -> dict[str, str]:
    headers = auth(new_key("acme"))
    for agent in ("helper", "other"):
        r = http.post("/v1/agents", json={"agent_id": agent}, headers=headers)
        assert r.status_code == 201, r.text
    return headers


def stored(http: TestClient) -> tuple[int, int, int]:
    with http.app.state.services.sql.begin() as conn:
        return tuple(
            conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in (threads, messages, runs)
        )


def add(
    http: TestClient, h: dict[str, str], thread_id: str, *contents: str, role: str = "user"
) -> list[dict[str, Any]]:
    r = http.post(
        f"/v1/threads/{thread_id}/messages",
        json={"messages": [{"role": role, "content": c} for c in contents]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_create_get_update_delete(http: TestClient, h):
    r = http.post(
        "/v1/threads",
        json={"agent_id": "helper", "title": "Lisbon", "metadata": {"user": "u1"}},
        headers=h,
    )
    assert r.status_code == 201, r.text
    thread = r.json()
    assert thread["id"].startswith("thr_")
    assert (thread["agent_id"], thread["title"], thread["metadata"]) == (
        "helper",
        "Lisbon",
        {"user": "u1"},
    )
    assert thread["created_at"] == thread["updated_at"]
    assert http.get(f"/v1/threads/{thread['id']}", headers=h).json() == thread

    changed = http.patch(f"/v1/threads/{thread['id']}", json={"title": "Porto"}, headers=h).json()
    assert (changed["title"], changed["metadata"]) == ("Porto", {"user": "u1"})
    assert changed["updated_at"] > thread["updated_at"]
    changed = http.patch(
        f"/v1/threads/{thread['id']}", json={"metadata": {"n": 2}}, headers=h
    ).json()
    assert (changed["title"], changed["metadata"]) == ("Porto", {"n": 2})
    changed = http.patch(f"/v1/threads/{thread['id']}", json={"title": None}, headers=h).json()
    assert changed["title"] is None

    add(http, h, thread["id"], "hello")
    assert http.delete(f"/v1/threads/{thread['id']}", headers=h).status_code == 204
    assert http.get(f"/v1/threads/{thread['id']}", headers=h).status_code == 404
    assert http.delete(f"/v1/threads/{thread['id']}", headers=h).status_code == 404
    assert stored(http) == (0, 0, 0)


def test_create_without_agent_and_for_an_unknown_agent(http: TestClient, h):
    free = http.post("/v1/threads", json={}, headers=h)
    assert free.status_code == 201 and free.json()["agent_id"] is None
    ghost = http.post("/v1/threads", json={"agent_id": "ghost"}, headers=h)
    assert ghost.status_code == 404 and ghost.json()["error"]["field"] == "agent_id"
    assert stored(http) == (1, 0, 0)


def test_list_is_newest_first_in_pages_and_filters_by_agent(http: TestClient, h):
    made = [
        http.post(
            "/v1/threads", json={"agent_id": "helper" if i % 2 else "other"}, headers=h
        ).json()
        for i in range(7)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = http.get("/v1/threads", params=params, headers=h).json()
        seen += [t["id"] for t in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    newest_first = sorted(made, key=lambda t: (t["created_at"], t["id"]), reverse=True)
    assert seen == [t["id"] for t in newest_first]
    helpers = http.get("/v1/threads", params={"agent_id": "helper", "limit": 100}, headers=h).json()
    assert [t["id"] for t in helpers["data"]] == [
        t["id"] for t in newest_first if t["agent_id"] == "helper"
    ]
    assert helpers["next_cursor"] is None


def test_messages_page_forward_and_backward(http: TestClient, h):
    thread = http.post("/v1/threads", json={"agent_id": "helper"}, headers=h).json()
    written = add(http, h, thread["id"], *[f"m{i}" for i in range(10)])
    ids = [m["id"] for m in written]
    assert [m["content"] for m in written] == [f"m{i}" for i in range(10)]

    def page(**params: Any) -> list[str]:
        r = http.get(f"/v1/threads/{thread['id']}/messages", params=params, headers=h)
        assert r.status_code == 200, r.text
        return [m["id"] for m in r.json()]

    assert page() == ids
    assert page(limit=4) == ids[:4]
    assert page(limit=4, after=ids[3]) == ids[4:8]
    assert page(limit=4, after=ids[7]) == ids[8:]
    assert page(limit=3, before=ids[5]) == ids[2:5]
    assert page(limit=10, before=ids[2]) == ids[:2]
    assert page(limit=10, after=ids[1], before=ids[5]) == ids[2:5]
    gone = http.get(f"/v1/threads/{thread['id']}/messages", params={"after": "msg_nope"}, headers=h)
    assert gone.status_code == 404 and gone.json()["error"]["field"] == "after"


def test_add_messages_roles_and_runs_see_them_as_history(http: TestClient, h, llm: ScriptedLLM):
    thread = http.post("/v1/threads", json={"agent_id": "helper"}, headers=h).json()
    http.post(
        f"/v1/threads/{thread['id']}/messages",
        json={
            "messages": [
                {"role": "system", "content": "The user is on the Lisbon trip."},
                {"role": "user", "content": "I like window seats"},
                {"role": "assistant", "content": "Noted."},
            ]
        },
        headers=h,
    )
    run = http.post(
        "/v1/agents/helper/runs",
        json={"message": "Which seat?", "thread_id": thread["id"]},
        headers=h,
    )
    assert run.status_code == 200, run.text
    sent = [(m["role"], m["content"]) for m in llm.messages(0)]
    assert sent[-4:] == [
        ("system", "The user is on the Lisbon trip."),
        ("user", "I like window seats"),
        ("assistant", "Noted."),
        ("user", "Which seat?"),
    ]
    transcript = http.get(f"/v1/threads/{thread['id']}/messages", headers=h).json()
    assert [(m["role"], m["run_id"] is None) for m in transcript] == [
        ("system", True),
        ("user", True),
        ("assistant", True),
        ("user", False),
        ("assistant", False),
    ]


def test_delete_messages_all_or_before(http: TestClient, h):
    thread = http.post("/v1/threads", json={"agent_id": "helper"}, headers=h).json()
    ids = [m["id"] for m in add(http, h, thread["id"], *"abcdef")]
    r = http.delete(f"/v1/threads/{thread['id']}/messages", params={"before": ids[2]}, headers=h)
    assert r.status_code == 200 and r.json() == {"deleted": 2}
    assert [
        m["id"] for m in http.get(f"/v1/threads/{thread['id']}/messages", headers=h).json()
    ] == ids[2:]
    assert http.delete(f"/v1/threads/{thread['id']}/messages", headers=h).json() == {"deleted": 4}
    assert http.get(f"/v1/threads/{thread['id']}/messages", headers=h).json() == []
    assert http.get(f"/v1/threads/{thread['id']}", headers=h).status_code == 200
    again = add(http, h, thread["id"], "after")
    assert [
        m["id"] for m in http.get(f"/v1/threads/{thread['id']}/messages", headers=h).json()
    ] == [again[0]["id"]]


def test_runs_accept_the_agents_threads_bind_free_ones_and_refuse_another_agents(
    http: TestClient, h, llm: ScriptedLLM
):
    mine = http.post("/v1/threads", json={"agent_id": "helper"}, headers=h).json()
    ok = http.post(
        "/v1/agents/helper/runs", json={"message": "Hi", "thread_id": mine["id"]}, headers=h
    )
    assert ok.status_code == 200 and ok.json()["thread_id"] == mine["id"]

    refused = http.post(
        "/v1/agents/other/runs", json={"message": "Hi", "thread_id": mine["id"]}, headers=h
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["field"] == "thread_id" and "belongs to agent 'helper'" in error["message"]
    assert len(llm.requests) == 1  # refused before the provider was called

    free = http.post("/v1/threads", json={"title": "unbound"}, headers=h).json()
    bound = http.post(
        "/v1/agents/other/runs", json={"message": "Hi", "thread_id": free["id"]}, headers=h
    )
    assert bound.status_code == 200, bound.text
    assert http.get(f"/v1/threads/{free['id']}", headers=h).json()["agent_id"] == "other"
    again = http.post(
        "/v1/agents/helper/runs", json={"message": "Hi", "thread_id": free["id"]}, headers=h
    )
    assert again.status_code == 422


def test_another_tenants_thread_is_404_on_every_route(http: TestClient, h, new_key):
    rng = random.Random(16)
    thread = http.post(
        "/v1/threads", json={"agent_id": "helper", "title": "mine"}, headers=h
    ).json()
    ids = [m["id"] for m in add(http, h, thread["id"], "one", "two", "three")]
    other = auth(new_key("globex"))
    assert http.post("/v1/agents", json={"agent_id": "helper"}, headers=other).status_code == 201
    t = f"/v1/threads/{thread['id']}"
    attempts = [
        ("GET", t, {}, None),
        ("PATCH", t, {}, {"title": "stolen"}),
        ("DELETE", t, {}, None),
        ("GET", f"{t}/messages", {}, None),
        ("GET", f"{t}/messages", {"after": ids[0]}, None),
        ("POST", f"{t}/messages", {}, {"messages": [{"role": "user", "content": "x"}]}),
        ("DELETE", f"{t}/messages", {}, None),
        ("DELETE", f"{t}/messages", {"before": ids[2]}, None),
        ("GET", f"{t}/messages", {"before": ids[2]}, None),
        ("POST", f"{t}/compact", {}, {"keep_last": 0}),
        ("POST", "/v1/agents/helper/runs", {}, {"message": "Hi", "thread_id": thread["id"]}),
    ]
    rng.shuffle(attempts)
    before = stored(http)
    feeds = [http.get("/v1/events", headers=x).json() for x in (h, other)]
    for method, url, params, body in attempts:
        r = http.request(method, url, params=params, json=body, headers=other)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
    assert stored(http) == before
    assert [http.get("/v1/events", headers=x).json() for x in (h, other)] == feeds
    assert http.get("/v1/threads", headers=other).json() == {"data": [], "next_cursor": None}
    assert http.get(t, headers=h).json()["title"] == "mine"
    assert [m["id"] for m in http.get(f"{t}/messages", headers=h).json()] == ids


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": "x" * 100_001}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": "a\x00b"}]}, "messages.0.content"),
        ({"messages": [{"role": "user", "content": "x"}] * 10_000}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "user", "content": "ok"}, {"role": "user"}]}, "messages.1.content"),
    ],
    ids=["tool", "unknown-role", "empty", "oversize", "nul", "10000", "none", "second-bad"],
)
def test_bad_messages_are_4xx_naming_the_field_and_change_nothing(http: TestClient, h, body, field):
    thread = http.post("/v1/threads", json={"agent_id": "helper"}, headers=h).json()
    before = stored(http)
    feed = http.get("/v1/events", headers=h).json()
    r = http.post(f"/v1/threads/{thread['id']}/messages", json=body, headers=h)
    assert 400 <= r.status_code < 500 and r.status_code != 404, r.text
    assert field in r.text
    assert stored(http) == before
    assert http.get("/v1/events", headers=h).json() == feed


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "field"),
    [
        ("POST", "/v1/threads", {}, {"title": "x" * 257}, "title"),
        ("POST", "/v1/threads", {}, {"metadata": {"k": "v" * 17_000}}, "metadata"),
        ("POST", "/v1/threads", {}, {"agent_id": "bad id"}, "agent_id"),
        ("POST", "/v1/threads", {}, {"owner": "me"}, "owner"),
        ("GET", "/v1/threads", {"limit": 0}, None, "limit"),
        ("GET", "/v1/threads", {"limit": 1001}, None, "limit"),
        ("GET", "/v1/threads", {"cursor": "%%%"}, None, "cursor"),
        ("GET", "/v1/threads/{id}/messages", {"limit": 5000}, None, "limit"),
        ("GET", "/v1/threads/{id}/messages", {"before": "a b"}, None, "before"),
        ("PATCH", "/v1/threads/{id}", {}, {"metadata": None}, "metadata"),
    ],
)
def test_bad_thread_input_is_422_naming_the_field(
    http: TestClient, h, method, path, params, body, field
):
    thread = http.post("/v1/threads", json={"agent_id": "helper", "title": "t"}, headers=h).json()
    before = stored(http)
    r = http.request(
        method, path.replace("{id}", thread["id"]), params=params, json=body, headers=h
    )
    assert r.status_code == 422, r.text
    assert field in r.text
    assert stored(http) == before
    assert http.get(f"/v1/threads/{thread['id']}", headers=h).json()["title"] == "t"
