"""Tool surfaces against one real `agentmem serve` (docs/mcp.md, docs/langgraph.md):

- mcp:   recall through MCP (/mcp, the official `mcp` client) vs the same recall over REST (the
         public `agentmem.AsyncClient`), in the same run.
- store: `AgentmemStore.search(query=...)` latency over `--store-items` indexed items (p50/p95).

    python -m evals.bench_mcp [--parts mcp,store] [--n 300] [--lines 5000] [--store-items 10000]

The two are interleaved call by call (which goes first alternates), on one event loop, with the
same queries, so the noise of this shared box falls on both alike; the figure that matters is the
ratio of the medians. Both recall k=5 in hybrid mode from one user scope of `--lines` lines,
embedded by the server's model (the bundled MiniLM unless `--embedding-model` says otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from evals._bench import Server, latency_summary, log

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

OUT = Path(__file__).resolve().parent / "out" / "bench_mcp.json"
QUESTIONS = [
    "where does my sister live now?",
    "what did we decide about the budget?",
    "which restaurant did Tom recommend?",
    "when is the dentist appointment?",
    "what is the name of the new project?",
    "how old is the dog?",
    "who is organising the offsite?",
    "what did the doctor say about the knee?",
]
_PEOPLE = ["Ana", "Bo", "Tom", "Mia", "Raj", "Lea", "Kai", "Zoe"]
_THINGS = [
    "moved to Porto",
    "booked the dentist for Tuesday",
    "recommended the ramen place on 5th",
    "said the budget stays at 40k",
    "named the project Heron",
    "adopted a three-year-old dog",
    "is organising the offsite in May",
    "heard the knee needs physio",
]


def lines(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [f"Day {i}: {rng.choice(_PEOPLE)} {rng.choice(_THINGS)}." for i in range(n)]


async def measure(url: str, key: str, n: int) -> dict[str, Any]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    import agentmem

    rest_s: list[float] = []
    mcp_s: list[float] = []
    async with agentmem.AsyncClient(api_key=key, base_url=url) as rest:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}) as http:
            async with Client(streamable_http_client(url + "/mcp", http_client=http)) as mcp:

                async def via_rest(query: str) -> int:
                    return len(await rest.memory.recall(query, limit=5))

                async def via_mcp(query: str) -> int:
                    result = await mcp.call_tool(
                        "recall_archival_memory", {"query": query, "limit": 5}
                    )
                    assert not result.is_error, result.structured_content
                    return len(result.structured_content["matches"])  # type: ignore[index]

                for i in range(40):  # warm both paths (pools, caches, code)
                    assert await via_rest(QUESTIONS[i % 8]) == await via_mcp(QUESTIONS[i % 8])
                for i in range(n):
                    query = QUESTIONS[i % len(QUESTIONS)]
                    order = [("rest", via_rest), ("mcp", via_mcp)]
                    if i % 2:
                        order.reverse()
                    for name, fn in order:
                        t0 = time.perf_counter()
                        await fn(query)
                        (rest_s if name == "rest" else mcp_s).append(time.perf_counter() - t0)
    rest_summary, mcp_summary = latency_summary(rest_s), latency_summary(mcp_s)
    return {
        "rest_recall": rest_summary,
        "mcp_recall": mcp_summary,
        "mcp_over_rest_p50": round(mcp_summary["p50_ms"] / rest_summary["p50_ms"], 3),
        "mcp_minus_rest_p50_ms": round(mcp_summary["p50_ms"] - rest_summary["p50_ms"], 2),
    }


STORE_TOPICS = [
    "prefers a window seat on long flights",
    "is allergic to peanuts and shellfish",
    "plays the cello on Sunday mornings",
    "walks the dog before work",
    "is learning Portuguese for a move to Porto",
    "supports the local football club",
    "drinks oat milk in coffee",
    "keeps a vegetable garden on the balcony",
]


def measure_store(url: str, key: str, items: int, n: int) -> dict[str, Any]:
    """Put `items` indexed items (8 writers), then time `n` semantic searches over all of them."""
    from concurrent.futures import ThreadPoolExecutor

    import agentmem
    from agentmem.integrations.langgraph import AgentmemStore

    rng = random.Random(11)
    texts = [f"{rng.choice(_PEOPLE)} {rng.choice(STORE_TOPICS)} (note {i})" for i in range(items)]
    with agentmem.Client(api_key=key, base_url=url, timeout=120) as client:
        store = AgentmemStore(client, index={"fields": ["text"]})
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(
                pool.map(
                    lambda i: store.put(("bench", f"user{i % 10}"), f"m{i}", {"text": texts[i]}),
                    range(items),
                )
            )
        put_s = time.perf_counter() - t0
        log(f"put {items} indexed items in {put_s:.0f} s")
        queries = ["what can't she eat?", "music on weekends", "where does he want to live?"]
        for q in queries:  # warm
            store.search(("bench",), query=q, limit=10)
        searches = []
        for i in range(n):
            t0 = time.perf_counter()
            hits = store.search(("bench",), query=queries[i % len(queries)], limit=10)
            searches.append(time.perf_counter() - t0)
            assert len(hits) == 10
    return {
        "items": items,
        "put_per_s": round(items / put_s, 1),
        "search_query_limit10": latency_summary(searches),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=300, help="measured recalls per transport")
    parser.add_argument("--lines", type=int, default=5000, help="archival lines in the scope")
    parser.add_argument("--parts", default="mcp,store", help="mcp, store or both")
    parser.add_argument("--store-items", type=int, default=10_000, help="items for `store`")
    parser.add_argument("--embedding-model", default=None, help="AGENTMEM_EMBEDDING_MODEL")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)

    import agentmem

    parts = set(args.parts.split(","))
    settings = {"embedding_model": args.embedding_model} if args.embedding_model else {}
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as tmp:
        server = Server(Path(tmp) / "data", **settings).start()
        try:
            if "mcp" in parts:
                text = lines(args.lines)
                log(f"ingesting {len(text)} lines")
                with agentmem.Client(api_key=server.key, base_url=server.url, timeout=600) as c:
                    for start in range(0, len(text), 1000):
                        c.memory.append("archival", "\n".join(text[start : start + 1000]))
                log(f"measuring {args.n} recalls per transport, interleaved")
                result.update(asyncio.run(measure(server.url, server.key, args.n)))
            if "store" in parts:
                result["store"] = measure_store(server.url, server.key, args.store_items, args.n)
        finally:
            server.stop()
    result["lines"] = args.lines
    result["embedding_model"] = args.embedding_model or "default (bundled MiniLM)"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
