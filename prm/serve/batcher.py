"""Concurrent requests share forward passes: a queue, a short collection window and a token budget per round.

Each request submits its encoded traces and awaits their scores. One worker takes the first waiting request, then
keeps taking more as long as each next one arrives within `window_s` of the last (at most `max_wait_s` after the
first, and until `budget` tokens are collected), and scores them all in one call of `score_fn` on a worker thread,
so the event loop keeps accepting requests meanwhile. The window slides because clients that were answered together
come back spread out: a fixed window would split them over several small rounds, and a small round scores fewer
traces per second. Under load the queue fills while a round runs, and the next round starts full.

    batcher = Batcher(scorer.score_encoded, window_s=0.005, max_wait_s=0.05, budget=32768)
    await batcher.start()
    scores = await batcher.submit(encoded)       # list[list[float]], one list per trace
    await batcher.stop()                          # finishes what was submitted first
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass
class _Job:
    items: list
    tokens: int
    future: asyncio.Future


class Batcher:
    def __init__(
        self,
        score_fn: Callable[[list], list[list[float]]],
        *,
        window_s: float = 0.005,
        max_wait_s: float = 0.05,
        budget: int = 32768,
        size: Callable[[object], int] = lambda e: len(e.input_ids),
    ):
        self.score_fn, self.window_s, self.max_wait_s = score_fn, window_s, max(max_wait_s, window_s)
        self.budget, self.size = budget, size
        self.queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self.task: asyncio.Task | None = None
        self.rounds = 0  # scoring rounds run, and the traces they held: how well requests shared passes
        self.traces = 0

    async def start(self) -> None:
        self.task = asyncio.create_task(self._work())

    async def stop(self) -> None:
        """Score everything already submitted, then end the worker."""
        if self.task is not None:
            await self.queue.put(None)
            await self.task
            self.task = None

    async def submit(self, items: Sequence) -> list[list[float]]:
        if self.task is None or self.task.done():
            raise RuntimeError("the batcher is not running")
        job = _Job(list(items), sum(self.size(e) for e in items), asyncio.get_running_loop().create_future())
        await self.queue.put(job)
        return await job.future

    async def _collect(self, first: _Job) -> tuple[list[_Job], bool]:
        """The jobs of one round, and whether the stop sign came."""
        loop = asyncio.get_running_loop()
        jobs, tokens = [first], first.tokens
        last_call = loop.time() + self.max_wait_s
        deadline = min(loop.time() + self.window_s, last_call)
        while tokens < self.budget:
            try:
                job = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - loop.time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self.queue.get(), left)
                except asyncio.TimeoutError:
                    break
            if job is None:
                return jobs, True
            jobs.append(job)
            tokens += job.tokens
            deadline = min(loop.time() + self.window_s, last_call)
        return jobs, False

    async def _work(self) -> None:
        stopping = False
        while not stopping:
            first = await self.queue.get()
            if first is None:
                break
            jobs, stopping = await self._collect(first)
            flat = [e for j in jobs for e in j.items]
            try:
                scores = await asyncio.to_thread(self.score_fn, flat)
            except Exception as e:  # every waiting request gets the error; the worker lives on
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(e)
                continue
            self.rounds += 1
            self.traces += len(flat)
            k = 0
            for j in jobs:
                if not j.future.done():  # a client that went away leaves a cancelled future
                    j.future.set_result(scores[k : k + len(j.items)])
                k += len(j.items)
        # after the stop sign, nothing new is accepted; fail anything that raced in behind it
        while not self.queue.empty():
            job = self.queue.get_nowait()
            if job is not None and not job.future.done():
                job.future.set_exception(RuntimeError("the server is shutting down"))
