"""Batch bugs are caught with the batch check's share of the examples
(``conformance/test_properties.py``: a quarter of the profile's): kernels planted here make a
sample's unreduced loss depend on the rest of its batch. Each runs through ``--impl`` under the
derandomised ``ci`` profile (so the test cannot flake) and must fail test_batch_is_per_sample in
both dtypes named. Under the randomised default profile (10 fresh seeds each, measured when the
share was cut to a quarter) each was caught in float64 and float32 in 10 of 10 runs."""

from __future__ import annotations

import re

import pytest

from tests.conftest import planted_suite

BATCH_BUGS = """
import torch

F = torch.nn.functional


def mse_none_times_batch(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    out = F.mse_loss(input, target, reduction=reduction, weight=weight)
    return out * input.shape[0] if reduction == "none" and input.ndim else out


def ce_none_leaks_batch_mean(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
                              reduction="mean", label_smoothing=0.0):
    # each unreduced loss carries 1e-3 of the batch's mean loss (a batch statistic leaking in)
    out = F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                          label_smoothing=label_smoothing)
    return out + 1e-3 * out.mean() if reduction == "none" and input.ndim > 1 else out
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    return planted_suite(pytester, monkeypatch, "batch_bugs", BATCH_BUGS)


@pytest.mark.parametrize(
    ("loss", "bug"), [("mse_loss", "mse_none_times_batch"), ("cross_entropy", "ce_none_leaks_batch_mean")]
)
def test_batch_bug_is_caught(run, loss: str, bug: str) -> None:  # type: ignore[no-untyped-def]
    result = run(f"--loss={loss}", f"--impl={loss}=batch_bugs:{bug}", "-k", "test_batch_is_per_sample")
    out = result.stdout.str()
    failed = set(re.findall(r"^FAILED \S+::(test_\w+\[[^\]]+\])", out, flags=re.M))
    assert all(any(f.endswith(f"-{d}]") for f in failed) for d in ("float64", "float32")), out[-3000:]
    assert all(f.startswith("test_batch_is_per_sample[") for f in failed), failed
