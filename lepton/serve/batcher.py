"""Dynamic batching: requests that arrive close together share one call of predict.

    batcher = Batcher(model, max_batch=32, max_delay_s=0.002)
    await batcher.start()
    outputs = await batcher.infer(arrays, rows)     # from many request handlers at once
    await batcher.stop()

Requests wait in a list. While the model is idle, a batch leaves as soon as the waiting rows
reach max_batch, or when the oldest waiting request has waited max_delay_s (at once with no
delay); it takes requests in arrival order up to max_batch rows. A worker thread concatenates
their inputs along the batch axis, calls predict once (compiled calls release the GIL, so the
event loop keeps reading requests meanwhile) and splits the outputs back. While a batch runs,
the next requests wait, so under load batches fill without any delay. A request with more rows
than max_batch runs alone; a model without a batch axis, or max_batch=1, runs each request
alone. An exception from predict fails every request of that batch with `ModelError`.

The event loop does no more per request than append to the list and, per batch, hand the batch
to the thread and take the results back (one wake-up each way): no queue, task or timer per
request.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from .model import ServableModel, as_list


class ModelError(Exception):
    """predict raised; the message names the exception."""


@dataclass
class _Pending:
    arrays: list[np.ndarray]
    rows: int
    arrived: float
    future: asyncio.Future = field(repr=False)


class Batcher:
    def __init__(self, model: ServableModel, max_batch: int = 1, max_delay_s: float = 0.0):
        self.model = model
        self.max_batch = max(1, max_batch) if model.batchable else 1
        self.max_delay_s = max(0.0, max_delay_s)
        self.stats = {"requests": 0, "predict_calls": 0, "rows": 0, "largest_batch": 0}
        self._waiting: deque[_Pending] = deque()
        self._waiting_rows = 0
        self._running = False           # a batch is in the worker thread
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._idle: asyncio.Event | None = None
        self._stopping = False

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._idle = asyncio.Event()
        self._idle.set()
        self._stopping = False
        self._thread = threading.Thread(target=self._work, name="lepton-predict", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        """Finishes the waiting requests, then stops the worker thread."""
        if self._thread is None:
            return
        self._stopping = True           # no more waiting for rows: what waits runs now
        self._dispatch()
        await self._idle.wait()
        self._jobs.put(None)
        await asyncio.get_running_loop().run_in_executor(None, self._thread.join)
        self._thread = None

    async def infer(self, arrays: list[np.ndarray], rows: int | None) -> list[np.ndarray]:
        """The model's outputs for one request's inputs (rows: its size on the batch axis)."""
        if self._thread is None:
            raise RuntimeError("the batcher is not running (start() it first)")
        loop = self._loop
        future = loop.create_future()
        self._waiting.append(_Pending(arrays, rows or 1, loop.time(), future))
        self._waiting_rows += rows or 1
        self._idle.clear()
        if not self._running:
            self._dispatch()
        return await future

    def _dispatch(self, due_now: bool = False) -> None:
        """Sends a batch to the worker if the model is idle and one is due (event loop)."""
        if self._running:
            return
        if not self._waiting:
            self._idle.set()
            return
        if self._waiting_rows < self.max_batch and not self._stopping and not due_now:
            due = self._waiting[0].arrived + self.max_delay_s
            if due > self._loop.time():
                if self._timer is None:     # the oldest request's; it fires _timed_out
                    self._timer = self._loop.call_at(due, self._timed_out)
                return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch = [self._waiting.popleft()]
        rows = batch[0].rows
        while self._waiting and rows + self._waiting[0].rows <= self.max_batch:
            item = self._waiting.popleft()
            batch.append(item)
            rows += item.rows
        self._waiting_rows -= rows
        self.stats["requests"] += len(batch)
        self.stats["predict_calls"] += 1
        self.stats["rows"] += rows
        self.stats["largest_batch"] = max(self.stats["largest_batch"], rows)
        self._running = True
        self._jobs.put(batch)

    def _timed_out(self) -> None:
        # due now even if the clock says a few µs early: uvloop's timers have 1 ms steps, and
        # setting the timer again would spin the loop until the due time
        self._timer = None
        self._dispatch(due_now=True)

    def _finished(self, batch: list[_Pending], parts, error: Exception | None) -> None:
        """The worker's results back on the event loop: answer each request, run the next."""
        self._running = False
        for i, p in enumerate(batch):
            if p.future.done():         # the client went away
                continue
            if error is not None:
                p.future.set_exception(error)
            else:
                p.future.set_result(parts[i])
        self._dispatch()

    def _work(self) -> None:
        """The worker thread: one batch at a time until stop()."""
        while True:
            batch = self._jobs.get()
            if batch is None:
                return
            parts, error = None, None
            try:
                parts = self._call([p.arrays for p in batch], [p.rows for p in batch])
            except Exception as e:  # noqa: BLE001  the model's failure is each request's answer
                error = ModelError(f"{type(e).__name__}: {e}")
            self._loop.call_soon_threadsafe(self._finished, batch, parts, error)

    def _call(self, inputs: list[list[np.ndarray]], rows: list[int]) -> list[list[np.ndarray]]:
        """predict on the concatenated inputs, split back per request (in the worker thread)."""
        model = self.model
        if len(inputs) == 1:
            return [as_list(model.predict(*inputs[0]))]
        joined = [np.concatenate([req[i] for req in inputs], axis=t.batch_axis)
                  for i, t in enumerate(model.inputs)]
        outputs = as_list(model.predict(*joined))
        parts: list[list[np.ndarray]] = [[] for _ in rows]
        for o, t in zip(outputs, model.outputs):    # views of each request's rows
            lead, start = (slice(None),) * t.batch_axis, 0
            for part, n in zip(parts, rows):
                part.append(o[lead + (slice(start, start + n),)])
                start += n
        return parts
