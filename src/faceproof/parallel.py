"""Spare threads for the independent parts of one request (tracking a clip's halves, the
identity embeddings, the card's screenshot check beside its OCR).

A verification is one request waiting on one clip or one photo; on an idle machine a second
core halves that wait. The models release the GIL while they run (onnxruntime, OpenCV,
libtesseract), so threads are enough.

A part no helper has started by the time its result is needed runs on the caller's thread
instead (`Part.result`): on a busy machine, where every helper is taken by other requests, a
request never waits in a queue for its own work, and it costs what it did without helpers.
One process-wide set of helpers (`shared_helpers()`, one thread fewer than the cores) serves
every request, so helpers never outnumber the spare cores.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

__all__ = ["Helpers", "Part", "available_cores", "shared_helpers"]

T = TypeVar("T")


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Part(Generic[T]):
    """One part handed to a helper; `result()` runs it here if no helper has started it. The
    part runs once: later `result()` calls give the same value or raise the same error."""

    __slots__ = ("_call", "_future")

    def __init__(self, call: Callable[[], T], future: Future[T] | None) -> None:
        self._call = call
        self._future = future

    def result(self) -> T:
        future = self._future
        if future is None or future.cancel():  # not started: do it here, and keep the outcome
            future = self._future = Future()
            try:
                future.set_result(self._call())
            except BaseException as exc:  # kept for every later result(), then raised
                future.set_exception(exc)
        return future.result()


class Helpers:
    """`threads` helper threads (0: every part runs on its caller's thread)."""

    def __init__(self, threads: int) -> None:
        self.threads = max(0, threads)
        self._pool = (
            ThreadPoolExecutor(self.threads, thread_name_prefix="faceproof-helper")
            if self.threads
            else None
        )

    def beside(self, call: Callable[[], T]) -> Part[T]:
        """Start `call` on a free helper; its `result()` waits for it or runs it there."""
        return Part(call, self._pool.submit(call) if self._pool is not None else None)

    def all(self, calls: list[Callable[[], T]]) -> list[T]:
        """Every call's result, in order: the first on this thread, the others beside it.
        All have ended when this returns or raises; the earliest call's error wins."""
        later = [self.beside(c) for c in calls[1:]]
        results: list[T] = []
        error: BaseException | None = None
        for run in [calls[0], *(p.result for p in later)]:
            try:
                results.append(run())
            except BaseException as exc:  # re-raised below, once every part has ended
                error = error or exc
        if error is not None:
            raise error
        return results

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


_shared: Helpers | None = None
_shared_lock = threading.Lock()


def shared_helpers() -> Helpers:
    """The process's helpers: one thread fewer than its cores (none on one core)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Helpers(available_cores() - 1)
        return _shared
