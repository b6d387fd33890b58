"""Worker processes that cannot outlive the job that started them.

Scraping parses HTML and ingest parses PDFs in worker processes, so the parsing runs on another core while the
main process downloads, imports torch or embeds. Two rules every such pool follows:

* ``spawn``, not ``fork``: a forked worker inherits its siblings' pipe ends and keeps running after the parent is
  killed with ``kill -9`` (and forking a process that holds threads and an open SQLite handle is unsafe anyway);
* on Linux each worker asks the kernel for ``SIGTERM`` when its parent dies (``PR_SET_PDEATHSIG``), so a killed
  job leaves no idle workers behind.

Example:
    >>> with spawn_pool(2) as pool:
    ...     pool.submit(pow, 2, 10).result()
    1024
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import ProcessPoolExecutor


def die_with_parent() -> None:
    """Worker initializer: on Linux, ask the kernel to end this worker when its parent dies (even by kill -9)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn_pool(max_workers: int) -> ProcessPoolExecutor:
    """A process pool of spawned workers that die with this process (see module docstring)."""
    return ProcessPoolExecutor(
        max_workers=max_workers, mp_context=multiprocessing.get_context("spawn"), initializer=die_with_parent
    )
