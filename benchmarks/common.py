"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def time_call(function: Callable[[], object], *, repeats: int = 5, warmup: int = 1) -> float:
    """Returns the median wall time of ``function()`` in seconds, after warm-up calls.

    Args:
        function: The work to time.
        repeats: Timed calls; the median is reported.
        warmup: Untimed calls first (tracing, caches).

    Returns:
        Median seconds per call.
    """
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)
