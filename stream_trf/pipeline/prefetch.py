"""Run an iterator ahead in a thread, through a bounded queue.

``trf_tok2vec`` pulls its input docs through this, so that everything upstream of it (spaCy's
tokenizer, the sentencizer, the wordpiece tokenizer and alignment) works on the next docs while
the transformer computes on the current ones. PyTorch releases the GIL inside its kernels, so the
two really overlap. The queue is bounded: upstream never runs more than ``ahead`` items ahead,
which keeps memory flat when the model is the bottleneck.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from ..threads import name_os_thread

T = TypeVar("T")

_END = object()


class _Raised:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def iter_ahead(items: Iterable[T], ahead: int) -> Iterator[T]:
    """Yield ``items`` in order, produced up to ``ahead`` items early by a worker thread.

    An exception raised by ``items`` is raised here, at the same position. Closing the returned
    generator early stops the thread.
    """
    if ahead < 1:
        yield from items
        return
    q: queue.Queue[object] = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:  # whatever fails here, the consumer hears of it (it would wait forever)
            name_os_thread()  # trf-prefetch, in top -H and the host benchmark's split
            for item in items:
                if not put(item):
                    return
        except BaseException as err:  # handed to the consumer, raised there
            put(_Raised(err))
            return
        put(_END)

    thread = threading.Thread(target=produce, name="stream-trf-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is _END:
                return
            if isinstance(item, _Raised):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
