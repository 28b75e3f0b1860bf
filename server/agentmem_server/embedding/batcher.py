"""Runs an embedder off the event loop, merging texts from concurrent requests into shared batches.

Texts that wait while the model is busy are merged into the next batch, up to `max_batch` texts
and shared among the free lanes. Measured (evals/bench_archival.py --parts batcher, MiniLM, CPU,
one torch thread per lane, 2 lanes): 64 concurrent one-line requests ran at 226-236 texts/s
merged vs 98-108 one request per batch (2.2x); 64 four-line requests at 203 vs 189-191 (+7%).
Large requests take turns batch by batch, so a bulk append cannot starve a small one.

Model calls run on worker threads ("lanes"): `workers` lanes take any batch, and one more lane
takes only queries (`urgent=True`), so a recall never waits behind a batch of ingestion; it calls
the embedder's `embed_query` where it has one. The embedder must allow concurrent calls when
there is more than one lane.

The bulk lanes run at a lower OS priority than the query lane and the event loop
(`priority.py`): while a big append keeps every core embedding, the scheduler still gives a core
at once to a small request's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..priority import BULK_NICE, lower_this_thread
from .base import Embedder


@dataclass(eq=False)
class _Request:
    texts: Sequence[str]
    future: asyncio.Future[np.ndarray]
    vectors: Optional[np.ndarray] = None
    taken: int = 0
    done: int = 0


@dataclass(eq=False)
class _Batch:
    parts: list[tuple[_Request, int, int]] = field(default_factory=list)  # (request, start, end)

    @property
    def texts(self) -> list[str]:
        return [t for r, a, b in self.parts for t in r.texts[a:b]]


class EmbeddingBatcher:
    """`await batcher.embed(texts)` from any number of coroutines.

    batcher = EmbeddingBatcher(embedder, max_batch=64, workers=2)
    vectors = await batcher.embed(["a fact"], urgent=True)
    await batcher.aclose()
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        max_batch: int = 64,
        merge: bool = True,
        workers: int = 1,
        bulk_nice: int = BULK_NICE,
    ):
        if max_batch < 1 or workers < 1:
            raise ValueError(f"max_batch and workers must be >= 1, not {max_batch} and {workers}")
        self.embedder = embedder
        self.max_batch = max_batch
        self.merge = merge
        """False runs each request's texts alone (the baseline the benchmark compares with)."""
        self.workers = workers
        self.batches_run = 0
        # Two pools, so that a lane's OS priority is fixed when its thread starts.
        self._executor = ThreadPoolExecutor(
            max_workers=workers,
            thread_name_prefix="agentmem-embed",
            initializer=lower_this_thread,
            initargs=(bulk_nice,),
        )
        self._query_executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="agentmem-embed-query"
        )
        self._urgent: deque[_Request] = deque()
        self._normal: deque[_Request] = deque()
        self._free_lanes = workers
        self._query_lane_free = True
        self._running: set[asyncio.Task[None]] = set()
        self._wakeup: Optional[asyncio.Event] = None
        self._dispatcher: Optional[asyncio.Task[None]] = None
        self._closed = False
        self._embed_query = getattr(embedder, "embed_query", embedder.embed)

    async def embed(self, texts: Sequence[str], *, urgent: bool = False) -> np.ndarray:
        """Vectors for `texts`, in order: shape `(len(texts), dimension)`, float32, unit length."""
        if self._closed:
            raise RuntimeError("the embedding batcher is closed")
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        loop = asyncio.get_running_loop()
        if urgent and self._query_lane_free and not self._urgent and len(texts) <= self.max_batch:
            return await self._run_query_now(loop, texts)
        return await self._queued(loop, texts, urgent)

    def start_query(self, texts: Sequence[str]) -> asyncio.Future[np.ndarray]:
        """`embed(texts, urgent=True)` started now, as a future. With the query lane free the
        future is the lane's own answer, set by one callback on the loop when the model returns:
        a caller awaiting it wakes one turn of the loop after the model call, where a task
        around `embed` takes three more (docs/recall.md, "Fewer turns of the loop")."""
        if self._closed:
            raise RuntimeError("the embedding batcher is closed")
        loop = asyncio.get_running_loop()
        if texts and self._query_lane_free and not self._urgent and len(texts) <= self.max_batch:
            return self._run_query_now(loop, texts)
        return asyncio.ensure_future(self.embed(texts, urgent=True))

    async def _queued(
        self, loop: asyncio.AbstractEventLoop, texts: Sequence[str], urgent: bool
    ) -> np.ndarray:
        request = _Request(texts, loop.create_future())
        (self._urgent if urgent else self._normal).append(request)
        if self._dispatcher is None or self._dispatcher.done():
            self._wakeup = asyncio.Event()
            self._dispatcher = loop.create_task(self._dispatch(), name="agentmem-embed-batcher")
        self._poke()
        return await request.future

    def _run_query_now(
        self, loop: asyncio.AbstractEventLoop, texts: Sequence[str]
    ) -> asyncio.Future[np.ndarray]:
        """A query with the query lane free runs on it at once: no trip through the dispatcher
        (each of its hops is a turn of the event loop, ~0.1-0.3 ms on a busy box). The lane's
        thread hands its result back with one `call_soon_threadsafe`, where `run_in_executor`
        and a shield took a turn each."""
        self._query_lane_free = False
        answer: asyncio.Future[np.ndarray] = loop.create_future()

        def finish(model_call: concurrent.futures.Future[np.ndarray]) -> None:
            # On the loop, when the thread is done, not when the caller is: a cancelled caller's
            # query still holds the lane until the model returns.
            self._query_lane_free = True
            if self._urgent:  # queries that came meanwhile went to the dispatcher
                self._poke()
            if answer.done():  # the caller gave up
                return
            error = model_call.exception()
            if error is not None:
                answer.set_exception(error)
            else:
                self.batches_run += 1
                answer.set_result(model_call.result())

        def returned(model_call: concurrent.futures.Future[np.ndarray]) -> None:
            # On the lane's thread. A closed loop means the server is gone and nobody waits.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(finish, model_call)

        self._query_executor.submit(self._embed_query, texts).add_done_callback(returned)
        return answer

    def _poke(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()

    def _take(self, queues: Sequence[deque[_Request]], room: int) -> _Batch:
        batch = _Batch()
        for queue in queues:
            while queue and room:
                request = queue.popleft()
                if request.future.done():  # cancelled by its caller
                    continue
                take = min(room, len(request.texts) - request.taken)
                batch.parts.append((request, request.taken, request.taken + take))
                request.taken += take
                room -= take
                if request.taken < len(request.texts):
                    queue.append(request)  # take turns: the rest waits behind the others
                if not self.merge:
                    return batch
        return batch

    async def _dispatch(self) -> None:
        assert self._wakeup is not None
        while not self._closed:
            await self._wakeup.wait()
            self._wakeup.clear()
            while True:
                if self._urgent and self._query_lane_free:
                    self._query_lane_free = False
                    self._start(self._take([self._urgent], self.max_batch), query_lane=True)
                elif (self._urgent or self._normal) and self._free_lanes:
                    # Share what waits among the free lanes: one big batch would leave cores idle.
                    waiting = sum(
                        len(r.texts) - r.taken for q in (self._urgent, self._normal) for r in q
                    )
                    room = max(1, min(self.max_batch, -(-waiting // self._free_lanes)))
                    self._free_lanes -= 1
                    self._start(self._take([self._urgent, self._normal], room), query_lane=False)
                else:
                    break

    def _start(self, batch: _Batch, *, query_lane: bool) -> None:
        task = asyncio.get_running_loop().create_task(self._run(batch, query_lane))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: _Batch, query_lane: bool) -> None:
        loop = asyncio.get_running_loop()
        try:
            if not batch.parts:
                return
            try:
                if query_lane:
                    pool, embed = self._query_executor, self._embed_query
                else:
                    pool, embed = self._executor, self.embedder.embed
                vectors = await loop.run_in_executor(pool, embed, batch.texts)
            except Exception as exc:  # noqa: BLE001 - handed to every caller waiting on this batch
                for r, _, _ in batch.parts:
                    if not r.future.done():
                        r.future.set_exception(exc)
                return
            self.batches_run += 1
            offset = 0
            for r, a, b in batch.parts:
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
        finally:
            if query_lane:
                self._query_lane_free = True
            else:
                self._free_lanes += 1
            self._poke()

    async def aclose(self) -> None:
        self._closed = True
        tasks = [t for t in (self._dispatcher, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for queue in (self._urgent, self._normal):
            for r in queue:
                if not r.future.done():
                    r.future.set_exception(RuntimeError("the embedding batcher closed"))
            queue.clear()
        self._executor.shutdown(wait=True)
        self._query_executor.shutdown(wait=True)
