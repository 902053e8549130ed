"""Feeds the model: records taken from the stream wait, merged, until the model is free.

faust's ``take`` hands over whatever arrived within ``batch_within``. Computing each such chunk
as a batch of its own made batch sizes alternate under load: a small chunk was taken while a big
batch computed, then everything that arrived meanwhile became the next, big batch, and so on.
Half the batches were small, and small batches use the model worst. Here chunks join one waiting
batch until the model is free, so each batch holds what arrived while the one before it ran:
the batch size follows the load, from a few records at low rates to ``max_batch`` in a backlog.

Order and at least once: batches are computed one at a time in the order their records came,
and each is delivered (published, acknowledged) only after the batch before it was. At most
``in_flight`` batches are dispatched and not yet delivered, and up to ``max_batch`` records wait
beyond those; ``add`` returns only once there is room again (backpressure on the consumer). On
stop, dispatched batches are finished and delivered; records still waiting are left unacked, so
the next owner of their partition takes them (nothing is computed twice or lost).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Feeder(Generic[T, R]):
    """Merges taken items into batches for ``compute`` and delivers results in order."""

    def __init__(
        self,
        compute: Callable[[list[T]], Awaitable[R]],
        deliver: Callable[[list[T], R], Awaitable[None]],
        *,
        max_batch: int,
        in_flight: int = 2,
    ) -> None:
        if max_batch < 1 or in_flight < 1:
            raise ValueError(
                f"max_batch and in_flight must be positive, got {max_batch}, {in_flight}"
            )
        self.compute = compute
        self.deliver = deliver
        self.max_batch = max_batch
        self.in_flight = in_flight
        self.waiting: list[T] = []
        self.tasks: deque[asyncio.Task[None]] = deque()  # dispatched, in order
        self.computing = False
        self.failed = False  # a batch raised: dispatch nothing more
        self.sizes: deque[int] = deque(maxlen=1024)  # the latest batches' sizes (tests, logs)
        self._changed = asyncio.Event()

    async def add(self, items: list[T]) -> None:
        """Queue ``items`` (in order) and return once fewer than ``max_batch`` wait. Raises what a
        finished batch raised, in order."""
        self.waiting.extend(items)
        self._dispatch()
        await self._reap()
        while len(self.waiting) >= self.max_batch:
            self._changed.clear()
            await self._changed.wait()
            await self._reap()

    async def stop(self) -> None:
        """Finish and deliver every dispatched batch; leave waiting items undispatched."""
        self.waiting.clear()
        while self.tasks:
            await asyncio.shield(self.tasks[0])
            self.tasks.popleft()

    @property
    def undelivered(self) -> int:
        return sum(1 for t in self.tasks if not t.done())

    def _dispatch(self) -> None:
        """Start the next batch if the model is free, something waits, and fewer than
        ``in_flight`` batches are undelivered."""
        if self.failed or self.computing or not self.waiting:
            return
        if self.undelivered >= self.in_flight:
            return
        batch, self.waiting = self.waiting[: self.max_batch], self.waiting[self.max_batch :]
        self.computing = True
        self.sizes.append(len(batch))
        before = self.tasks[-1] if self.tasks else None
        task = asyncio.ensure_future(self._run(batch, before))
        task.add_done_callback(lambda _: self._settle())
        self.tasks.append(task)
        self._changed.set()

    async def _run(self, batch: list[T], before: asyncio.Task[None] | None) -> None:
        try:
            try:
                result = await self.compute(batch)
            finally:
                self.computing = False
            self._settle()  # the next batch computes while this one is delivered
            if before is not None:
                await asyncio.shield(before)  # in order; raises if the batch before failed
            await self.deliver(batch, result)
        except BaseException:
            self.failed = True
            raise

    def _settle(self) -> None:
        self._dispatch()
        self._changed.set()

    async def _reap(self) -> None:
        """Drop delivered batches from the front; re-raise the first failure."""
        while self.tasks and self.tasks[0].done():
            self.tasks.popleft().result()
