"""Dynamic batching: requests that arrive close together share one call of predict.

    batcher = Batcher(model, max_batch=32, max_delay_s=0.002)
    await batcher.start()
    outputs = await batcher.infer(arrays, rows)     # from many request handlers at once
    await batcher.stop()

One task takes the first waiting request, then more until the batch holds max_batch rows or
max_delay_s has passed since it took the first; it concatenates their inputs along the batch
axis, calls predict once in a worker thread (compiled calls release the GIL, so the event loop
keeps accepting requests meanwhile) and splits the outputs back. While a batch runs, the next
requests queue up, so under load batches fill without waiting. A request with more rows than
max_batch runs alone; a model without a batch axis, or max_batch=1, runs each request alone.
An exception from predict fails every request of that batch with `ModelError`.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .model import ServableModel, as_list


class ModelError(Exception):
    """predict raised; the message names the exception."""


@dataclass
class _Pending:
    arrays: list[np.ndarray]
    rows: int
    future: asyncio.Future = field(repr=False)


class Batcher:
    def __init__(self, model: ServableModel, max_batch: int = 1, max_delay_s: float = 0.0):
        self.model = model
        self.max_batch = max(1, max_batch) if model.batchable else 1
        self.max_delay_s = max(0.0, max_delay_s)
        self.stats = {"requests": 0, "predict_calls": 0, "rows": 0, "largest_batch": 0}
        self._queue: asyncio.Queue | None = None
        self._held: _Pending | None = None
        self._task: asyncio.Task | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="lepton-predict")

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Finishes the queued requests, then stops the task and the worker thread."""
        if self._task is not None:
            await self._queue.put(None)
            await self._task
            self._task = None
        self._pool.shutdown(wait=True)

    async def infer(self, arrays: list[np.ndarray], rows: int | None) -> list[np.ndarray]:
        """The model's outputs for one request's inputs (rows: its size on the batch axis)."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(arrays, rows or 1, future))
        return await future

    async def _next(self, timeout: float | None) -> _Pending | None:
        if self._held is not None:
            item, self._held = self._held, None
            return item
        if not self._queue.empty() or timeout is None:
            return await self._queue.get()
        return await asyncio.wait_for(self._queue.get(), timeout)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            first = await self._next(None)
            if first is None:
                return
            batch, rows = [first], first.rows
            deadline = loop.time() + self.max_delay_s
            stopping = False
            while rows < self.max_batch:
                left = deadline - loop.time()
                if left <= 0 and self._queue.empty():
                    break
                try:
                    item = await self._next(max(left, 0.0))
                except TimeoutError:
                    break
                if item is None:
                    stopping = True
                    break
                if rows + item.rows > self.max_batch:
                    self._held = item
                    break
                batch.append(item)
                rows += item.rows
            await self._execute(batch, rows)
            if stopping:    # nothing is held: an item is held only when collecting stops
                return

    async def _execute(self, batch: list[_Pending], rows: int) -> None:
        self.stats["requests"] += len(batch)
        self.stats["predict_calls"] += 1
        self.stats["rows"] += rows
        self.stats["largest_batch"] = max(self.stats["largest_batch"], rows)
        try:
            parts = await asyncio.get_running_loop().run_in_executor(
                self._pool, self._call, [p.arrays for p in batch], [p.rows for p in batch])
        except Exception as e:  # the model's failure is each request's answer
            error = ModelError(f"{type(e).__name__}: {e}")
            for p in batch:
                if not p.future.done():
                    p.future.set_exception(error)
            return
        for p, outputs in zip(batch, parts):
            if not p.future.done():
                p.future.set_result(outputs)

    def _call(self, inputs: list[list[np.ndarray]], rows: list[int]) -> list[list[np.ndarray]]:
        """predict on the concatenated inputs, split back per request (in the worker thread)."""
        model = self.model
        if len(inputs) == 1:
            return [as_list(model.predict(*inputs[0]))]
        joined = [np.concatenate([req[i] for req in inputs], axis=t.batch_axis)
                  for i, t in enumerate(model.inputs)]
        outputs = as_list(model.predict(*joined))
        cuts = np.cumsum(rows)[:-1]
        split = [np.split(o, cuts, axis=t.batch_axis) for o, t in zip(outputs, model.outputs)]
        return [list(per_request) for per_request in zip(*split)]
