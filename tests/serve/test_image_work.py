"""Uploads are decoded and embedded in a bounded pool beside the event loop: the loop keeps answering meanwhile, and
past the pool's workers and queue a caller is told at once that the server is busy."""

import asyncio
import threading

import pytest

from mmsearch.serve.guard import Busy, refusal
from mmsearch.serve.image_work import ImageWork


def test_past_the_workers_and_the_queue_a_picture_is_refused_busy_with_503_while_the_loop_runs_on():
    async def scenario():
        pool, release = ImageWork(workers=1, queue=1), threading.Event()
        first = asyncio.create_task(pool.run(release.wait))
        second = asyncio.create_task(pool.run(lambda: "second"))
        await asyncio.sleep(0.05)
        ticks = 0
        for _ in range(5):  # the loop is free while the worker is held
            await asyncio.sleep(0.01)
            ticks += 1
        with pytest.raises(Busy) as busy:
            await pool.run(lambda: "third")
        release.set()
        assert await first is True and await second == "second" and ticks == 5
        assert await pool.run(lambda: "after") == "after"  # room again
        pool.close()
        return busy.value

    busy = asyncio.run(scenario())
    refused = refusal(busy)
    assert refused.status == 503 and refused.headers["Retry-After"] == "1" and "busy" in refused.message
