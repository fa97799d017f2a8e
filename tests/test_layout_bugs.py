"""Layout bugs are caught with the layout checks' share of the examples
(``conformance/test_layouts.py``: a quarter of the profile's for each layout): kernels planted here
read their input as if it were dense and row-major (the storage in order from the offset, as a
hand-written kernel that takes ``data_ptr()`` does) or ignore the storage offset. Each runs through
``--impl`` under the derandomised ``ci`` profile (so the test cannot flake), and must fail the
layouts it mishandles in both dtypes, and pass the contiguous checks. Under the randomised default
profile (10 seeds each, measured when the layouts' share of examples was cut to a quarter) each was
caught in 10 of 10 runs on the layouts named here."""

from __future__ import annotations

import re

import pytest

from tests.conftest import planted_suite

LAYOUT_BUGS = """
import torch

F = torch.nn.functional


def _dense(x):
    # the storage from the view's offset, read with a contiguous tensor's strides
    return torch.as_strided(x, x.shape, torch.empty(x.shape, device="meta").stride(), x.storage_offset())


def mse_reads_storage_in_order(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    return F.mse_loss(_dense(input), target, reduction=reduction, weight=weight)


def mse_ignores_offset(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    return F.mse_loss(torch.as_strided(input, input.shape, input.stride(), 0), target,
                      reduction=reduction, weight=weight)
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    return planted_suite(pytester, monkeypatch, "layout_bugs", LAYOUT_BUGS)


@pytest.mark.parametrize(
    ("bug", "caught"),
    [
        # (a sliced view of a dense buffer is dense: read in order from its offset, it is right)
        ("mse_reads_storage_in_order", {"non_contiguous", "expanded", "channels_last"}),
        ("mse_ignores_offset", {"sliced"}),
    ],
)
def test_layout_bug_is_caught(run, bug: str, caught: set[str]) -> None:  # type: ignore[no-untyped-def]
    impl = f"--impl=mse_loss=layout_bugs:{bug}"
    result = run("--loss=mse_loss", impl, "-k", "test_layout or test_gradient")
    out = result.stdout.str()
    failed = set(re.findall(r"^FAILED \S+::(test_\w+\[[^\]]+\])", out, flags=re.M))
    want = {f"test_layout[mse_loss-{d}-{lay}]" for d in ("float64", "float32") for lay in caught}
    assert want <= failed, out[-3000:]
    assert all(f.startswith("test_layout[") for f in failed), failed  # contiguous inputs: right
