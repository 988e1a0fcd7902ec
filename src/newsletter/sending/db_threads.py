"""The sender's database threads: blocking store work run off the event loop, its result handed
straight to a future of the loop.

A gate round hops to a database thread twice (its statements, then its commit), so a hop should
cost little: a job is a tuple on one queue, and the thread settles the loop's future itself
with `call_soon_threadsafe` — no executor future with its condition and locks, no idle-thread
semaphore, no second future chained to it (`run_in_executor`).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DbThreads"]


def _run_and_settle(loop: asyncio.AbstractEventLoop, done: asyncio.Future, func: Callable, args: tuple,
                    kwargs: dict) -> None:
    """(In a database thread.) Run `func` and give `done` its result or exception, on `loop`."""
    try:
        result = func(*args, **kwargs)
    except BaseException as exc:  # noqa: BLE001 — raised to the coroutine that awaits `done`
        loop.call_soon_threadsafe(_settle, done, None, exc)
    else:
        loop.call_soon_threadsafe(_settle, done, result, None)


def _settle(done: asyncio.Future, result: Any, exc: BaseException | None) -> None:
    if done.cancelled():  # the caller gave up waiting; the work was done all the same
        return
    if exc is None:
        done.set_result(result)
    else:
        done.set_exception(exc)


class DbThreads:
    """`count` threads (started at the first job) that run jobs in the order they come, any
    thread taking the next. `run(func, *args, **kwargs)` awaits one job's result (or raises its
    exception); `shutdown()` lets the queued jobs finish and ends the threads.

    The threads are daemons: a process that ends without `shutdown` (an error that escaped
    its sender) is not kept alive by them; a transaction cut short is the database's to roll back."""

    def __init__(self, count: int, *, name: str):
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = [threading.Thread(target=self._work, name=f"{name}_{i}", daemon=True) for i in range(count)]
        self._started = self._shut = False

    async def run(self, func: Callable, *args: Any, **kwargs: Any) -> Any:
        """`func(*args, **kwargs)` in a database thread; its result, or its exception raised here.
        Raises RuntimeError after `shutdown`."""
        if self._shut:
            raise RuntimeError("the database threads are shut down")
        if not self._started:
            self._started = True
            for thread in self._threads:
                thread.start()
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        self._jobs.put((loop, done, func, args, kwargs))
        return await done

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                _run_and_settle(*job)
            except RuntimeError:  # the loop is closed: nobody waits for this result any more
                pass

    def shutdown(self) -> None:
        """Wait for the queued jobs, then end the threads."""
        self._shut = True
        if not self._started:
            return
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
