"""Ablations of the recall pipeline, old and new side by side, on both of our datasets.

    python -m evals.recall_study --keys raw,key --rank plain,spread --out evals/out/study
    python -m evals.recall_study --keys key --rank spread --modes hybrid,vector,keyword --sets long

Each `--keys` variant starts its own in-process server and ingests each dataset once (the index
key decides the stored vectors); each `--rank` variant then recalls every question through the
public client with that ranking switched on in the server (rank-time switches are module
settings of the in-process server, which is why this cannot run against `--base-url`). Reports
land in `OUT/<keys>-<rank>-<set>/` in the harness's format; `OUT/summary.md` has one row per run.

keys:  raw   the server's defaults
       chunks  tables of chunks (`archival_units=chunks`: what the server did before issue 18)
       lines   tables of line units (`archival_units=lines`)
       key   `index_keys.embedding_key`: repeated date prefixes once, relative dates resolved
       collapse  repeated date prefixes once, relative dates left alone
       tail4 / tail8 / tail12 / tail16  the previous line of a unit key cut to its speaker label
                  and last 4 / 8 / 12 / 16 words (shorter keys, cheaper ingestion)
       short4 / short6 / short8 / short10  the previous line kept only when the unit's own line
                  has at most 4 / 6 / 8 / 10 words (speaker label aside)
       mixtok / mix50 / mix35  each line of a unit key embedded alone and the two vectors mixed
                  (by token share, half and half, 35% previous line)
       int8  keys embedded by an int8 copy of the model, queries in fp32
       (key and collapse need the index-key prototype of the recall-quality branch)
rank:  plain  the fused order as is (before spreading)
       u85 / u90 / u95  spread, line-unit tables fused at 0.85 / 0.9 / 0.95 cosine, not 0.93,
                  whatever the query (no dated-query weight)
       q-off  spread, without the dated-query weight (0.93 for every query)
       scaffold-off / scaffold-0.3  spread, hybrid's scaffold penalty at 0 / 0.3 (not 0.2)
       div-off  without `recall.DIVERSITY`, the vector leg at 1 x limit (the order before them)
       div-off-d2 / div-0.1  without diversity at 2 x limit; diversity 0.1 (not 0.3)
       u85s2 / u90s2  the same at 0.85 / 0.9, at most 2 results per write before the rest
       u90q80 / u90q70 / u93q80  0.9 (0.93), and 0.8 / 0.7 for a query naming a date
       s1 / s2  spread, and at most 1 / 2 results per write (session) before the rest
       s1d / s2d / d4  the same with the vector leg reading 4 x limit rows (d4: spread only)
       spread `recall.spread`: candidates sharing lines with a chosen one wait (the default)
       w80 / w70  spread, with a hybrid vector weight of 0.8 / 0.7 instead of 0.9
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Optional

from .dataset import load_dataset
from .harness import (
    _AGENT_SAFE,
    _ingest,
    _progress,
    _recall_all,
    build_report,
    local_server,
    write_outputs,
)

SETS = ("short", "long")


def _two_lines(key: str) -> Optional[tuple[str, str]]:
    """A unit key's previous line and own line, or None for a one-line key (or a scaffold of
    more lines)."""
    before, sep, body = key.partition("\n")
    return (before, body) if sep and "\n" not in body else None


def _date_head(line: str) -> str:
    """`"[7 May 2023] "` of a key's first line, or ""."""
    return line[: line.index("]") + 2] if line.startswith("[") and "]" in line else ""


def _previous_tail(words: int) -> Callable[[str], str]:
    """A two-line unit key with its previous line cut to its speaker label and last `words`
    words: what a shorter key (fewer model tokens per line at ingestion) would cost in recall."""
    from agentmem_server.scaffold import _LABEL

    def key(text: str) -> str:
        lines = _two_lines(text)
        if lines is None:
            return text
        before, body = lines
        m = _LABEL.match(before)
        label = m.group(0) if m else ""
        rest = before[len(label) :].split()
        if len(rest) <= words:
            return text
        return (label + " " if label else "") + " ".join(rest[-words:]) + "\n" + body

    return key


def _previous_if_short(words: int) -> Callable[[str], str]:
    """A two-line unit key keeps its previous line only when its own line (speaker label aside)
    has at most `words` words; a longer line is embedded alone, after the key's date."""
    from agentmem_server.scaffold import _LABEL

    def key(text: str) -> str:
        lines = _two_lines(text)
        if lines is None:
            return text
        before, body = lines
        m = _LABEL.match(body)
        if len(body[m.end() if m else 0 :].split()) <= words:
            return text
        return _date_head(before) + body

    return key


def _key_variants() -> dict[str, Callable[[str], str]]:
    variants: dict[str, Callable[[str], str]] = {"raw": lambda t: t}
    variants.update({f"tail{n}": _previous_tail(n) for n in (4, 8, 12, 16)})
    variants.update({f"short{n}": _previous_if_short(n) for n in (4, 6, 8, 10)})
    try:  # the index-key prototype lives on the recall-quality branch, not on main
        from agentmem_server import index_keys  # type: ignore[attr-defined]
    except ImportError:
        return variants

    def collapse_only(text: str) -> str:
        lines, out, previous = text.split("\n"), [], None
        for line in lines:
            prefix, rest = index_keys.split_prefix(line)
            out.append(rest if prefix and prefix == previous else line)
            previous = prefix or None
        return "\n".join(out)

    return {**variants, "key": index_keys.embedding_key, "collapse": collapse_only}


FORMATS: dict[str, dict] = {
    "chunks": {"archival_units": "chunks"},
    "lines": {"archival_units": "lines"},
}
"""`--keys` variants that are server settings (the table format) rather than embedding keys."""


RANKS: dict[str, dict] = {
    "plain": {"SPREAD_HYBRID": False},
    "spread": {"SPREAD_HYBRID": True},
    "w80": {"SPREAD_HYBRID": True, "weight": 0.8},
    "w70": {"SPREAD_HYBRID": True, "weight": 0.7},
    "plain-w80": {"SPREAD_HYBRID": False, "weight": 0.8},
    "u90": {
        "SPREAD_HYBRID": True,
        "HYBRID_UNIT_VECTOR_WEIGHT": 0.9,
        "DATED_QUERY_VECTOR_WEIGHT": None,
    },
    "u95": {
        "SPREAD_HYBRID": True,
        "HYBRID_UNIT_VECTOR_WEIGHT": 0.95,
        "DATED_QUERY_VECTOR_WEIGHT": None,
    },
    "u85": {
        "SPREAD_HYBRID": True,
        "HYBRID_UNIT_VECTOR_WEIGHT": 0.85,
        "DATED_QUERY_VECTOR_WEIGHT": None,
    },
    "q-off": {"SPREAD_HYBRID": True, "DATED_QUERY_VECTOR_WEIGHT": None},
    "scaffold-off": {"SPREAD_HYBRID": True, "SCAFFOLD_PENALTY": 0.0},
    "scaffold-0.3": {"SPREAD_HYBRID": True, "SCAFFOLD_PENALTY": 0.3},
    "div-off": {"SPREAD_HYBRID": True, "DIVERSITY": 0.0, "VECTOR_DEPTH": 1},
    "div-off-d2": {"SPREAD_HYBRID": True, "DIVERSITY": 0.0},
    "div-0.1": {"SPREAD_HYBRID": True, "DIVERSITY": 0.1},
    "u85s2": {"SPREAD_HYBRID": True, "HYBRID_UNIT_VECTOR_WEIGHT": 0.85, "SPREAD_PER_WRITE": 2},
    "u90q80": {
        "SPREAD_HYBRID": True,
        "HYBRID_UNIT_VECTOR_WEIGHT": 0.9,
        "DATED_QUERY_VECTOR_WEIGHT": 0.8,
    },
    "u90q70": {
        "SPREAD_HYBRID": True,
        "HYBRID_UNIT_VECTOR_WEIGHT": 0.9,
        "DATED_QUERY_VECTOR_WEIGHT": 0.7,
    },
    "u93q80": {"SPREAD_HYBRID": True, "DATED_QUERY_VECTOR_WEIGHT": 0.8},
    "u90s2": {"SPREAD_HYBRID": True, "HYBRID_UNIT_VECTOR_WEIGHT": 0.9, "SPREAD_PER_WRITE": 2},
    "s1": {"SPREAD_HYBRID": True, "SPREAD_PER_WRITE": 1},
    "s2": {"SPREAD_HYBRID": True, "SPREAD_PER_WRITE": 2},
    "s1d": {"SPREAD_HYBRID": True, "SPREAD_PER_WRITE": 1, "VECTOR_DEPTH": 4},
    "s2d": {"SPREAD_HYBRID": True, "SPREAD_PER_WRITE": 2, "VECTOR_DEPTH": 4},
    "d4": {"SPREAD_HYBRID": True, "VECTOR_DEPTH": 4},
}


@contextlib.contextmanager
def patched(module, values: dict) -> Iterator[None]:
    old = {k: getattr(module, k) for k in values}
    for k, v in values.items():
        setattr(module, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(module, k, v)


@contextlib.contextmanager
def ranking(variant: dict) -> Iterator[None]:
    """The in-process server's hybrid order switched to `variant` (spreading on/off, weight)."""
    import functools

    from agentmem_server.services import recall

    order = recall.ORDERS["hybrid"]
    weight = variant.get("weight")
    if weight is not None:
        recall.ORDERS["hybrid"] = functools.partial(recall.order_hybrid, weight=weight)
    switches = {k: v for k, v in variant.items() if k.isupper()}
    try:
        with patched(recall, switches):
            yield
    finally:
        recall.ORDERS["hybrid"] = order


@contextlib.contextmanager
def _keyed_embedding(key: Callable[[str], str]) -> Iterator[None]:
    """Chunks (the batcher's non-urgent texts; queries are urgent) are embedded as `key(text)`."""
    from agentmem_server.embedding import EmbeddingBatcher

    original = EmbeddingBatcher.embed

    async def embed(self, texts, *args, urgent: bool = False, **kwargs):
        return await original(
            self, texts if urgent else [key(t) for t in texts], *args, urgent=urgent, **kwargs
        )

    EmbeddingBatcher.embed = embed
    try:
        yield
    finally:
        EmbeddingBatcher.embed = original


MIXES: dict[str, Optional[float]] = {"mixtok": None, "mix50": 0.5, "mix35": 0.35}
"""`--keys` variants that embed a two-line unit key's lines apart and mix the two vectors: the
previous line's share (None: its share of the key's model tokens, what mean pooling over the
whole key would give it). Each distinct line then needs the model once, as in Chroma."""


@contextlib.contextmanager
def _mixed_embedding(share: Optional[float]) -> Iterator[None]:
    """Two-line keys (`[date] previous\nline`) embedded as `[date] previous` and `[date] line`,
    their unit vectors mixed by `share` and normalised; other texts as they are."""
    import numpy as np

    from agentmem_server.embedding import EmbeddingBatcher

    original = EmbeddingBatcher.embed

    async def embed(self, texts, *args, urgent: bool = False, **kwargs):
        if urgent:
            return await original(self, texts, *args, urgent=urgent, **kwargs)
        parts: list[str] = []
        plan: list[tuple[int, int]] = []
        for text in texts:
            lines = _two_lines(text)
            if lines is None:
                plan.append((len(parts), -1))
                parts.append(text)
                continue
            before, body = lines
            plan.append((len(parts), len(parts) + 1))
            parts += [before, _date_head(before) + body]
        vectors = await original(self, parts, *args, urgent=urgent, **kwargs)
        out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
        for row, (a, b) in enumerate(plan):
            if b < 0:
                out[row] = vectors[a]
                continue
            if share is None:
                na, nb = (self.embedder.count_tokens(parts[i]) for i in (a, b))
                w = na / (na + nb)
            else:
                w = share
            v = w * vectors[a] + (1 - w) * vectors[b]
            out[row] = v / np.linalg.norm(v)
        return out

    EmbeddingBatcher.embed = embed
    try:
        yield
    finally:
        EmbeddingBatcher.embed = original


@contextlib.contextmanager
def _int8_bulk() -> Iterator[None]:
    """Stored texts (the ONNX embedder's bulk lanes) embedded by an int8 copy of the model
    (`quantize_dynamic`, per-channel QInt8 weights of the MatMuls); queries stay fp32."""
    import tempfile

    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from agentmem_server.embedding import onnx as onnx_mod

    original = onnx_mod.OnnxSentenceEmbedder.__init__
    with tempfile.TemporaryDirectory() as tmp:

        def init(self, export_dir, *args, **kwargs):
            original(self, export_dir, *args, **kwargs)
            target = Path(tmp) / "model.int8.onnx"
            if not target.exists():
                quantize_dynamic(
                    Path(export_dir) / onnx_mod.ONNX_FILE,
                    target,
                    per_channel=True,
                    weight_type=QuantType.QInt8,
                    op_types_to_quantize=["MatMul"],
                )
            # Only the bulk session is swapped: `_query_session` keeps the fp32 one (the same
            # object when queries run on one thread).
            self._session = onnx_mod._session(ort, target, threads=1)

        onnx_mod.OnnxSentenceEmbedder.__init__ = init
        try:
            yield
        finally:
            onnx_mod.OnnxSentenceEmbedder.__init__ = original


def _vector_variant(key: str) -> contextlib.AbstractContextManager[None]:
    """What `--keys` changes below the texts: mixed vectors, int8 keys, or nothing."""
    if key in MIXES:
        return _mixed_embedding(MIXES[key])
    if key == "int8":
        return _int8_bulk()
    return contextlib.nullcontext()


def run_study(
    keys: Sequence[str],
    ranks: Sequence[str],
    sets: Sequence[str],
    modes: Sequence[str],
    out: Path,
    settings: Optional[dict] = None,
    limit: int = 20,
    top_limit: int = 5,
    max_conversations: Optional[int] = None,
) -> list[dict]:
    """One row per (keys, rank, set, mode) with the harness's overall and by-type figures."""
    from agentmem import Client

    key_fns = _key_variants()
    key_fns.update({name: key_fns["raw"] for name in (*FORMATS, *MIXES, "int8")})
    unknown = [k for k in keys if k not in key_fns] + [r for r in ranks if r not in RANKS]
    if unknown:
        raise ValueError(
            f"unknown variants {unknown}; keys here: {sorted(key_fns)}, ranks: {sorted(RANKS)}"
        )
    rows = []
    for key in keys:
        server_settings = {**(settings or {}), **FORMATS.get(key, {})} or None
        with (
            _vector_variant(key),
            _keyed_embedding(key_fns[key]),
            local_server(server_settings) as (url, api_key),
        ):
            with (
                Client(api_key=api_key, base_url=url, max_retries=2, timeout=120) as client,
                _progress(False) as bar,
            ):
                for name in sets:
                    convs = [c for c in load_dataset(name) if c.questions][:max_conversations]
                    tag = secrets.token_hex(3)
                    ids = {
                        c.conversation_id: f"study-{tag}-{_AGENT_SAFE.sub('_', c.conversation_id)}"
                        for c in convs
                    }
                    for conv in convs:
                        _ingest(client, conv, ids[conv.conversation_id])
                    for rank in ranks:
                        with ranking(RANKS[rank]):
                            records = _recall_all(
                                client, convs, ids, modes, limit, bar, top_limit=top_limit
                            )
                        report = build_report(
                            records,
                            modes=modes,
                            meta={
                                "dataset": {
                                    "path": name,
                                    "questions": sum(len(c.questions) for c in convs),
                                },
                                "config": {
                                    "keys": key,
                                    "rank": rank,
                                    "limit": limit,
                                    "top_limit": top_limit,
                                    "settings_overrides": settings or {},
                                },
                            },
                        )
                        run_dir = out / f"{key}-{rank}-{name}"
                        write_outputs(report, records, run_dir)
                        for mode in modes:
                            res = report["results"][mode]
                            rows.append(
                                {
                                    "keys": key,
                                    "rank": rank,
                                    "set": name,
                                    "mode": mode,
                                    "overall": res["overall"],
                                    "by_type": res["by_type"],
                                }
                            )
                        print(summary_line(rows[-len(modes) :]), flush=True)
    return rows


def summary_line(rows: Sequence[dict]) -> str:
    parts = []
    for r in rows:
        o = r["overall"]
        types = " ".join(f"{t}={v.get('top_recall@5', 0):.3f}" for t, v in r["by_type"].items())
        parts.append(
            f"{r['keys']:>8} {r['rank']:>9} {r['set']:>5} {r['mode']:>7}  "
            f"R@5 {o['top_recall@5']:.3f} Hit@5 {o['top_hit@5']:.3f} MRR@5 {o['top_mrr']:.3f} "
            f"tok {o['top_tokens_per_query']:.0f} p50 {o['top_latency_p50_ms']:.1f}  "
            f"R@10 {o['recall@10']:.3f} R@20 {o['recall@20']:.3f}  {types}"
        )
    return "\n".join(parts)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--keys", default="raw")
    p.add_argument("--rank", default="plain,spread")
    p.add_argument("--sets", default="short,long")
    p.add_argument("--modes", default="hybrid")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default="evals/out/study")
    args = p.parse_args(argv)
    settings = {}
    for item in args.settings:
        k, _, v = item.partition("=")
        settings[k] = json.loads(v) if v[:1].isdigit() else v
    out = Path(args.out)
    rows = run_study(
        args.keys.split(","),
        args.rank.split(","),
        args.sets.split(","),
        args.modes.split(","),
        out,
        settings or None,
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "summary.md").write_text("```\n" + summary_line(rows) + "\n```\n")
    print(summary_line(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
