"""The oracle side by side with torch-cpu at realistic sizes (pytest-benchmark).

Run with ``pytest benchmarks`` (not part of the project tests: ``testpaths`` is ``tests``). Each case
is timed twice in one benchmark group, ``oracle`` and ``torch`` (float64, value + gradient, on the
same inputs); the oracle's peak memory is measured apart, untimed, with tracemalloc (NumPy reports
its allocations to it), relative to the bytes of the case's input arrays. The summary at the end
prints the table of ratios: oracle / torch (goal ≤ 1.0) and peak / input (goal ≤ 3.0).
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

#: per case: the oracle's peak memory over the input's bytes, and the input's bytes
PEAKS: dict[str, tuple[float, int]] = {}


@pytest.fixture(scope="session")
def peak_over_input() -> Callable[[str, Callable[[], Any], int], float]:
    return _peak_over_input


def _peak_over_input(case: str, run: Callable[[], Any], input_bytes: int) -> float:
    """The peak of memory allocated while ``run()`` runs (its result dropped after), over
    ``input_bytes``; recorded for the summary."""
    gc.collect()
    tracemalloc.start()
    try:
        out = run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    del out
    PEAKS[case] = (peak / input_bytes, input_bytes)
    return peak / input_bytes


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    session = getattr(config, "_benchmarksession", None)
    if session is None or not session.benchmarks:
        return
    best: dict[str, dict[str, float]] = {}
    for b in session.benchmarks:
        if b.has_error or not b.stats:
            continue
        best.setdefault(b.group or b.name, {})[b.extra_info.get("side", b.name)] = b.stats.min
    tr = terminalreporter
    tr.write_sep("=", "oracle vs torch-cpu (float64, value + gradient; min of the rounds)")
    tr.write_line(f"{'case':58} {'oracle s':>9} {'torch s':>9} {'ratio':>7} {'peak/input':>11}")
    for case, sides in sorted(best.items()):
        o, t = sides.get("oracle"), sides.get("torch")
        ratio = f"{o / t:7.2f}" if o is not None and t else "      -"
        peak = f"{PEAKS[case][0]:10.2f}x" if case in PEAKS else "          -"
        fo = f"{o:9.3f}" if o is not None else "        -"
        ft = f"{t:9.3f}" if t is not None else "        -"
        tr.write_line(f"{case:58} {fo} {ft} {ratio} {peak}")
