"""Each fetched record handed to the agent's channel without four asyncio tasks per record.

faust's fetch loop (``Consumer._drain_messages``) passes every record through
``wait_first(on_message(record), suspend_flow.wait())``: four tasks created (the hand-off,
the flow's event, the consumer's stopped and crashed events), waited on, three cancelled, so
that a rebalance (the flow suspended) or a stop can interrupt a hand-off that waits. Almost no
hand-off waits: the record is decoded and put into the channel's queue at once.

:func:`install` makes that common case direct: the hand-off's first step runs in the fetch
loop's own task; one that completes there is done. One that suspends (a full channel queue,
flow control, the producer's buffer) goes on through faust's own ``wait_first``, from exactly
where it stopped, so a rebalance or a stop interrupts it as before. While the flow is
suspended or the consumer stopping, every call takes faust's path. Any other use of
``wait_first`` is untouched.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Coroutine, Generator
from typing import Any

from mode.services import WaitResults

_INSTALLED = "_stream_trf_direct_handoff"


def install() -> None:
    """Patch faust's consumer class (idempotent)."""
    from faust.transport.consumer import Consumer

    if getattr(Consumer, _INSTALLED, False):
        return
    original = Consumer.wait_first

    async def wait_first(self: Any, *coros: Any, timeout: Any = None) -> Any:
        if not _direct(self, coros, timeout):
            return await original(self, *coros, timeout=timeout)
        handoff, suspended = coros
        try:
            waiting = handoff.send(None)
        except StopIteration as done:
            suspended.close()
            return WaitResults([handoff], [done.value], False)
        except BaseException:
            suspended.close()
            raise
        return await original(self, _rest(handoff, waiting), suspended, timeout=timeout)

    Consumer.wait_first = wait_first  # type: ignore[method-assign]
    setattr(Consumer, _INSTALLED, True)


def _direct(consumer: Any, coros: tuple[Any, ...], timeout: Any) -> bool:
    """The fetch loop's hand-off of one record, with nothing suspending or stopping it."""
    if timeout is not None or len(coros) != 2:
        return False
    handoff, suspended = coros
    flow = getattr(consumer, "suspend_flow", None)
    return (
        flow is not None
        and not flow.is_set()
        and inspect.iscoroutine(handoff)
        and inspect.getcoroutinestate(handoff) == inspect.CORO_CREATED
        and _waits_on(suspended, flow)
        and not consumer._stopped.is_set()
        and not consumer._crashed.is_set()
    )


def _waits_on(coro: Any, event: Any) -> bool:
    """``coro`` is ``event.wait()``, not yet started."""
    return (
        inspect.iscoroutine(coro)
        and coro.cr_code is asyncio.Event.wait.__code__
        and coro.cr_frame is not None
        and coro.cr_frame.f_locals.get("self") is event
    )


class _Resumed:
    """A started coroutine, driven on from the point it suspended at (``waiting``: what it
    yielded to its task), as its task would have: what it yields is yielded, what is sent or
    thrown in goes to it."""

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting: Any) -> None:
        self.coro = coro
        self.waiting = waiting

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, waiting = self.coro, self.waiting
        while True:
            try:
                sent = yield waiting
            except BaseException as err:  # a cancellation, most likely: the coroutine's own
                try:
                    waiting = coro.throw(err)
                except StopIteration as done:
                    return done.value
                continue
            try:
                waiting = coro.send(sent)
            except StopIteration as done:
                return done.value


async def _rest(coro: Coroutine[Any, Any, Any], waiting: Any) -> Any:
    return await _Resumed(coro, waiting)
