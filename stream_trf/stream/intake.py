"""The agent's input in chunks, read straight from its channel's queue.

faust's ``Stream.noack_take`` runs its stream machinery for every event (a processor coroutine
that buffers it, the passive drainer, the timed wait for the buffer, sensors on the way in and
out): on a fast device that cost more of the event loop than fetching, publishing and acking
together. The conductor still turns each fetched record into an event on the agent's channel,
and the consumer still commits only acknowledged offsets; here a chunk is simply whatever the
channel holds, up to ``max_batch``, waiting up to ``within`` seconds after its first event for
more. What the stream did with each event it took is kept (``Admission``): events fetched
before a rebalance are dropped, the rest tracked until acked, so that a stopping worker waits
for them before its last commit. Each event is acked with ``event.ack()`` once its output is
published (stream/app.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

# How often a chunk that is not full looks for more events, until ``within`` has passed.
POLL_SECONDS = 0.005


def channel_of(stream: Any) -> Any:
    """The iterating clone of the agent's topic channel (registering it with faust's conductor,
    as iterating the stream would), whose queue the conductor fills."""
    return stream.channel.__aiter__()


async def chunks(channel: Any, max_batch: int, within: float) -> AsyncIterator[list[Any]]:
    """Lists of the channel's events: at least one, at most ``max_batch``; after the first,
    what is already queued, then what arrives within ``within`` seconds of it."""
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, got {max_batch}")
    queue = channel.queue
    admit = Admission(channel.app)
    loop = asyncio.get_running_loop()
    while True:
        events: list[Any] = []
        while not events:
            event = await queue.get()
            if admit(event):
                events.append(event)
        deadline = loop.time() + within
        while len(events) < max_batch:
            try:
                event = queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                # Polled, not a cancelled ``queue.get()``: an event taken just as a timeout
                # cancels its getter would be lost, and its offset never committed.
                await asyncio.sleep(min(remaining, POLL_SECONDS))
                continue
            if admit(event):
                events.append(event)
        yield events


class Admission:
    """What faust's stream does with each event it takes, done here: an event fetched before
    the latest rebalance (another generation, or flow control paused) is dropped unprocessed
    (the partition's owner reads it again from the committed offset); any other is tracked as
    pending acknowledgement, so that a stopping worker waits for it before its last commit."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.consumer = app.consumer
        self.acking_topics = app.topics.acking_topics

    def __call__(self, event: Any) -> bool:
        message = event.message
        app = self.app
        if not app.flow_control.is_active() or message.generation_id != (
            app.consumer_generation_id
        ):
            return False
        if message.topic in self.acking_topics and not message.tracked:
            message.tracked = True
            self.consumer.track_message(message)
        return True
