"""The sender's database threads: results and errors come back to the loop, jobs run in turn."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from newsletter.sending.db_threads import DbThreads


async def test_a_job_gives_its_result_or_raises_its_error_on_the_loop():
    threads = DbThreads(1, name="test-db")
    try:
        assert await threads.run(lambda a, b=0: a + b, 2, b=3) == 5
        with pytest.raises(ZeroDivisionError):
            await threads.run(lambda: 1 / 0)
        names = {await threads.run(lambda: threading.current_thread().name) for _ in range(5)}
        assert names == {"test-db_0"}  # SQLite's connections stay on their one thread
    finally:
        threads.shutdown()


async def test_one_thread_runs_jobs_in_the_order_they_came():
    threads = DbThreads(1, name="test-db")
    seen: list[int] = []

    def job(i: int) -> int:
        time.sleep(0.001 * (5 - i))
        seen.append(i)
        return i

    try:
        assert await asyncio.gather(*(threads.run(job, i) for i in range(5))) == list(range(5))
        assert seen == list(range(5))
    finally:
        threads.shutdown()


async def test_shutdown_waits_for_queued_jobs_and_refuses_new_ones():
    threads = DbThreads(2, name="test-db")
    done: list[int] = []
    pending = [asyncio.ensure_future(threads.run(lambda i=i: (time.sleep(0.01), done.append(i)))) for i in range(4)]
    await asyncio.sleep(0)  # the jobs are queued
    threads.shutdown()
    assert sorted(done) == [0, 1, 2, 3]
    await asyncio.gather(*pending)
    with pytest.raises(RuntimeError):
        await threads.run(lambda: None)


def test_threads_start_only_with_the_first_job():
    before = threading.active_count()
    threads = DbThreads(3, name="test-db")
    assert threading.active_count() == before
    threads.shutdown()
