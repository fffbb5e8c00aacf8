"""Uploaded pictures decoded and embedded off the event loop, in a bounded pool of threads.

REST searches run on the event loop (deployment.py says why), but a picture is not milliseconds: a 40-megapixel JPEG
took 1.1 s to decode there, and every other request, ``/healthz`` included, waited that long. Pillow and torch let go
of the GIL while they work, so in threads the loop keeps answering. At most ``workers`` pictures at once and ``queue``
more waiting; past that a caller is told at once that the server is busy (503 with Retry-After), not queued for ever.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from mmsearch.serve.guard import Busy

T = TypeVar("T")


class ImageWork:
    def __init__(self, workers: int, queue: int):
        self.workers, self.queue = max(1, int(workers)), max(0, int(queue))
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="mmsearch-image")
        self.taken = 0  # pictures being worked on or waiting; read and changed on the event loop only

    async def run(self, work: Callable[[], T]) -> T:
        if self.taken >= self.workers + self.queue:
            raise Busy(
                f"The server is busy with {self.taken} pictures. Retry in a moment.", 1.0, "image_queue", status=503
            )
        self.taken += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work)
        finally:
            self.taken -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
