"""Keyed state through the public client against real `agentmem serve` processes."""

from __future__ import annotations

import itertools
import random
import threading
from pathlib import Path

import pytest

import agentmem
from agentmem import ConflictError, NotFoundError

from support import clients_on, count_retries, create_key

pytestmark = pytest.mark.e2e

WRITERS = 16
INCREMENTS = 25


def _increment(client: agentmem.Client) -> int:
    """One `state.modify` increment of the counter; how many tries it took."""
    tries = 0

    def bump(n: int) -> int:
        nonlocal tries
        tries += 1
        return n + 1

    client.state.agent("counter").modify("runs", bump, default=0, max_attempts=10_000)
    return tries


def test_16_threads_x_25_modify_end_at_exactly_400(start_server, server_database):
    server = start_server(**server_database)
    with clients_on([server], create_key(server.env, "counter"), WRITERS) as clients:
        lost = count_retries(clients, _increment, INCREMENTS)
        assert clients[0].state.agent("counter").get_value("runs") == WRITERS * INCREMENTS
        assert lost > 0  # the guard was really exercised


@pytest.mark.postgres
def test_two_server_processes_on_one_postgres_lose_no_increment(
    start_server, postgres_url: str, tmp_path: Path
):
    first = start_server(data_dir=tmp_path / "replica-1", database_url=postgres_url)
    second = start_server(data_dir=tmp_path / "replica-2", database_url=postgres_url)
    with clients_on([first, second], create_key(first.env, "shared"), WRITERS) as clients:
        lost = count_retries(clients, _increment, INCREMENTS)
        assert clients[-1].state.agent("counter").get_value("runs") == WRITERS * INCREMENTS
        assert lost > 0


def test_last_write_wins_and_guarded_writes(start_server):
    server = start_server()
    with agentmem.Client(api_key=create_key(server.env, "acme"), base_url=server.url) as client:
        flags = client.state.tenant
        first = flags.set("feature_flags", {"new_ui": True})
        second = flags.set("feature_flags", {"new_ui": False})  # unguarded: the last write wins
        assert second.updated_at > first.updated_at and flags.get_value("feature_flags") == {
            "new_ui": False
        }
        with pytest.raises(ConflictError) as lost:
            flags.set("feature_flags", {"new_ui": True}, expected_updated_at=first.updated_at)
        assert lost.value.current_entry is not None and lost.value.current_entry.value == {
            "new_ui": False
        }
        assert lost.value.current_updated_at == second.updated_at
        with pytest.raises(ConflictError):
            flags.set("feature_flags", {}, expected_updated_at=None)
        assert flags.delete("feature_flags") is True and flags.delete("feature_flags") is False
        with pytest.raises(NotFoundError):
            flags.get("feature_flags")


def test_paging_2500_keys_while_others_insert_lists_each_key_once(start_server):
    server = start_server()
    key = create_key(server.env, "acme")
    with (
        agentmem.Client(api_key=key, base_url=server.url) as client,
        agentmem.Client(api_key=key, base_url=server.url) as writer_client,
    ):
        view = client.state.namespace("big")
        present = [f"key-{i:05d}" for i in range(0, 5000, 2)]  # 2,500 keys, gaps between them
        errors: list[BaseException] = []
        for k in present:
            view.set(k, 1)
        stop = threading.Event()

        def writer() -> None:
            rng = random.Random(3)
            try:
                while not stop.is_set():
                    writer_client.state.namespace("big").set(
                        f"key-{rng.randrange(5000) | 1:05d}", 2
                    )
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            seen: list[str] = []
            cursor = None
            while True:
                page = view.list(limit=97, cursor=cursor)
                seen += [i.key for i in page.items]
                cursor = page.next_cursor
                if cursor is None:
                    break
        finally:
            stop.set()
            thread.join()
        assert not errors, errors
        assert seen == sorted(seen) and len(seen) == len(set(seen))  # in order, none twice
        assert set(present) <= set(seen)  # every key present throughout was listed
        assert len(seen) > len(present)  # and the writer really was inserting meanwhile


def test_lookup_with_every_subset_of_levels(start_server):
    server = start_server()
    ids = {"workflow": "wf-1", "session": "user_12345", "agent": "support-agent-001"}
    levels = ["workflow", "session", "agent", "tenant"]
    with agentmem.Client(api_key=create_key(server.env, "acme"), base_url=server.url) as client:
        for n, present in enumerate(
            itertools.chain.from_iterable(itertools.combinations(levels, r) for r in range(5))
        ):
            key = f"k{n}"
            for level in present:
                view = (
                    client.state.tenant
                    if level == "tenant"
                    else getattr(client.state, level)(ids[level])
                )
                view.set(key, level)
            for given in itertools.chain.from_iterable(
                itertools.combinations(ids, r) for r in range(4)
            ):
                kwargs = {f"{level}_id": ids[level] for level in given}
                chain = [level for level in levels if level in given or level == "tenant"]
                expected = next((level for level in chain if level in present), None)
                ctx = client.state.context(**kwargs)
                if expected is None:
                    with pytest.raises(NotFoundError):
                        client.state.lookup(key, **kwargs)
                    assert ctx.get_value(key, default="none") == "none" and not ctx.exists(key)
                else:
                    entry = client.state.lookup(key, **kwargs)
                    assert entry.value == expected and ctx.get_value(key) == expected
                    assert entry.namespace == (
                        [] if expected == "tenant" else [expected, ids[expected]]
                    )


def test_tenants_never_see_each_other_randomized(start_server):
    server = start_server()
    rng = random.Random(1414)
    names = ["ta", "tb", "tc"]
    clients = {
        name: agentmem.Client(api_key=create_key(server.env, name), base_url=server.url)
        for name in names
    }
    model: dict[tuple[str, tuple[str, ...], str], int] = {}
    namespaces = [(), ("agent", "a"), ("session", "s"), ("workflow", "w")]
    try:
        for step in range(150):
            name, ns, key = rng.choice(names), rng.choice(namespaces), rng.choice("abcd")
            state = clients[name].state
            if rng.random() < 0.7:
                state.set(key, step, namespace=ns)
                model[(name, ns, key)] = step
            else:
                assert state.delete(key, namespace=ns) is ((name, ns, key) in model)
                model.pop((name, ns, key), None)
        for name, client in clients.items():
            for ns in namespaces:
                listed = {i.key for i in client.state.list(namespace=ns).items}
                assert listed == {k for (t, n, k) in model if t == name and n == ns}
                for key in "abcd":
                    assert client.state.get_value(key, namespace=ns) == model.get((name, ns, key))
            for key in "abcd":
                chain = [("workflow", "w"), ("session", "s"), ("agent", "a"), ()]
                hit = next(
                    (model[(name, ns, key)] for ns in chain if (name, ns, key) in model), None
                )
                ctx = client.state.context(workflow_id="w", session_id="s", agent_id="a")
                assert ctx.get_value(key) == hit
    finally:
        for c in clients.values():
            c.close()
