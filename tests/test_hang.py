"""A hanging implementation is killed after ``--conformance-timeout`` seconds, fails that check with
a clear message, and the run goes on (its worker process is replaced)."""

from __future__ import annotations

import pytest

HANGS = """
import time

import torch


def busy(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    while True:  # holds the GIL: no thread could interrupt it
        pass


def sleeps_on_float64(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    if input.dtype == torch.float64:
        time.sleep(3600)  # blocked in the C library
    return torch.nn.functional.mse_loss(input, target, reduction=reduction, weight=weight)
"""


def _run(pytester: pytest.Pytester, impl: str) -> pytest.RunResult:
    pytester.makepyfile(hanging=HANGS)
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance", "--loss=mse_loss",
        f"--impl=mse_loss=hanging:{impl}",
        "--conformance-timeout=1", "-k", "test_value and not reductions and (float64 or float32)", "-q",
    )  # fmt: skip


def test_busy_loop_is_killed(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "busy")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*did not return within 1 s (its worker process was killed)*"])


def test_only_the_hanging_check_fails(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "sleeps_on_float64")
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["*test_value*float64*", "*did not return within 1 s*"])
