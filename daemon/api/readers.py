"""Store queries off the event loop, on read-only connections of their own.

Each worker thread opens its own read-only store (WAL lets readers run beside
the pipeline's writer), and every query runs under the API's time limit: a
query past it is interrupted in SQLite, not just abandoned.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from aiohttp import web

from daemon.api.replies import problem
from daemon.store.base import Store

T = TypeVar("T")


class Readers:
    def __init__(self, open_store: Callable[[], Store], *, threads: int, timeout: float) -> None:
        self._open = open_store
        self._timeout = timeout
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="api-reader")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._stores: list[Store] = []

    def _store(self) -> Store:
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = self._open()
            self._local.store = store
            with self._lock:
                self._stores.append(store)
        return store

    async def call(self, query: Callable[[Store], T]) -> T:
        """Run ``query`` on a reader's store; 503 when it takes longer than the limit."""
        running: list[Store] = []

        def run() -> T:
            store = self._store()
            running.append(store)
            return query(store)

        future = asyncio.get_running_loop().run_in_executor(self._pool, run)
        try:
            return await asyncio.wait_for(future, self._timeout)
        except TimeoutError:
            for store in running:
                store.interrupt()
            raise problem(
                web.HTTPServiceUnavailable,
                f"the query took longer than {self._timeout:g} s; narrow it (time range, filters)",
            ) from None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for store in self._stores:
                store.close()
            self._stores.clear()
