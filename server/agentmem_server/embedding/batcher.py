"""Runs an embedder off the event loop, merging texts from concurrent requests into shared batches.

One worker thread owns the model: a model call already uses every core (torch's intra-op
threads), so two calls at once would only fight over them. Texts waiting while a batch runs are
merged into the next batch, up to `max_batch` texts: on this 2-core CPU MiniLM embeds about 2x
more texts per second in batches of 32-64 than one at a time (evals/bench_archival.py measures it).
Queries (`urgent=True`) go ahead of ingestion, and large requests take turns batch by batch so a
bulk append cannot starve a small one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .base import Embedder


@dataclass(eq=False)
class _Request:
    texts: Sequence[str]
    future: asyncio.Future
    vectors: Optional[np.ndarray] = None
    taken: int = 0
    done: int = 0
    slices: list = field(default_factory=list)


class EmbeddingBatcher:
    """`await batcher.embed(texts)` from any number of coroutines; one model call at a time.

        batcher = EmbeddingBatcher(embedder, max_batch=64)
        vectors = await batcher.embed(["a fact"], urgent=True)
        await batcher.aclose()
    """

    def __init__(self, embedder: Embedder, *, max_batch: int = 64, merge: bool = True):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, not {max_batch}")
        self.embedder = embedder
        self.max_batch = max_batch
        self.merge = merge
        """False runs each request's texts alone (the baseline the benchmark compares with)."""
        self.batches_run = 0
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agentmem-embed")
        self._urgent: deque[_Request] = deque()
        self._normal: deque[_Request] = deque()
        self._wakeup: Optional[asyncio.Event] = None
        self._worker: Optional[asyncio.Task] = None
        self._closed = False

    async def embed(self, texts: Sequence[str], *, urgent: bool = False) -> np.ndarray:
        """Vectors for `texts`, in order: shape `(len(texts), dimension)`, float32, unit length."""
        if self._closed:
            raise RuntimeError("the embedding batcher is closed")
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        loop = asyncio.get_running_loop()
        request = _Request(texts, loop.create_future())
        (self._urgent if urgent else self._normal).append(request)
        if self._worker is None or self._worker.done():
            self._wakeup = asyncio.Event()
            self._worker = loop.create_task(self._run(), name="agentmem-embed-batcher")
        assert self._wakeup is not None
        self._wakeup.set()
        return await request.future

    def _next_batch(self) -> list[_Request]:
        """Requests whose next texts form the coming batch (each remembers its slice)."""
        batch: list[_Request] = []
        room = self.max_batch
        for queue in (self._urgent, self._normal):
            while queue and room:
                request = queue[0]
                if request.future.done():  # cancelled by its caller
                    queue.popleft()
                    continue
                take = min(room, len(request.texts) - request.taken)
                request.slices.append((request.taken, request.taken + take))
                request.taken += take
                room -= take
                batch.append(request)
                queue.popleft()
                if request.taken < len(request.texts):
                    queue.append(request)  # take turns: the rest waits behind the others
                if not self.merge:
                    return batch
        return batch

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while not self._closed:
            await self._wakeup.wait()
            self._wakeup.clear()
            while True:
                batch = self._next_batch()
                if not batch:
                    break
                slices = [(r, r.slices.pop(0)) for r in batch]
                texts = [t for r, (a, b) in slices for t in r.texts[a:b]]
                try:
                    vectors = await loop.run_in_executor(self._executor, self.embedder.embed, texts)
                except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                    for r, _ in slices:
                        if not r.future.done():
                            r.future.set_exception(exc)
                        for queue in (self._urgent, self._normal):
                            if r in queue:
                                queue.remove(r)
                    continue
                self.batches_run += 1
                offset = 0
                for r, (a, b) in slices:
                    part = vectors[offset : offset + (b - a)]
                    offset += b - a
                    if r.future.done():
                        continue
                    if r.vectors is None:
                        r.vectors = np.empty((len(r.texts), part.shape[1]), dtype=np.float32)
                    r.vectors[a:b] = part
                    r.done += b - a
                    if r.done == len(r.texts):
                        r.future.set_result(r.vectors)

    async def aclose(self) -> None:
        self._closed = True
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        for queue in (self._urgent, self._normal):
            for r in queue:
                if not r.future.done():
                    r.future.set_exception(RuntimeError("the embedding batcher closed"))
            queue.clear()
        self._executor.shutdown(wait=True)
