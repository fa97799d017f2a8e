"""linear_cross_entropy and AdaptiveLogSoftmaxWithLoss: the oracle's composition against torch's
own float64 (whose reference path is the same composition), and planted wrong implementations that
``conformance/test_linear_cross_entropy.py`` / ``conformance/test_adaptive.py`` must catch on a
case where torch conforms.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import find, settings

from conformance.backends.override import OverrideBackend
from conformance.backends.torch_backend import cpu


def caught(check: Any, strategy: Any, backend: Any) -> Any:
    """A case of ``strategy`` on which ``check`` fails ``backend`` and passes torch-cpu (so not a
    false alarm), searched with Hypothesis; ``find`` raises if there is none."""

    def fails(case: Any) -> bool:
        try:
            check(backend, case)
        except BaseException as e:  # pytest.fail raises Failed, a BaseException
            if type(e).__name__ != "Failed":
                raise
            check(cpu, case)  # torch conforms on it: not a false alarm
            return True
        return False

    return find(strategy, fails, settings=settings(max_examples=500, database=None, deadline=None))


def lce_bias_dropped(
    input: Any, linear_weight: Any, target: Any, *, linear_bias: Any = None, **kw: Any
) -> Any:
    return F.linear_cross_entropy(input, linear_weight, target, **kw)  # BUG: the bias is ignored


def lce_smoothing_ignored(
    input: Any, linear_weight: Any, target: Any, *, label_smoothing: float = 0.0, **kw: Any
) -> Any:
    return F.linear_cross_entropy(input, linear_weight, target, **kw)  # BUG


def lce_chunked_float32(
    input: Any, linear_weight: Any, target: Any, *, options: Any = None, **kw: Any
) -> Any:
    """a 'fused kernel' that accumulates in float32 whatever the dtype"""
    kw2 = {
        k: (v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v) for k, v in kw.items()
    }
    out = F.linear_cross_entropy(input.float(), linear_weight.float(), target, **kw2)  # BUG
    return out.to(input.dtype)


def asm_sum_not_mean(input: Any, target: Any, params: Any, **kw: Any) -> Any:
    out, _ = cpu.loss("AdaptiveLogSoftmaxWithLoss")(input, target, params, **kw)  # type: ignore[misc]
    return out, -out.sum()  # BUG: -sum, not -mean


def asm_tail_without_head(input: Any, target: Any, params: Any, **kw: Any) -> Any:
    """a cluster's log-probability without the head's cluster term (log p of the class within it)"""
    fn = cpu.loss("AdaptiveLogSoftmaxWithLoss")
    out, _ = fn(input, target, params, **kw)  # type: ignore[misc]
    c0 = kw["cutoffs"][0]
    zh = F.linear(input, params["head.weight"], params.get("head.bias"))
    lsh = zh.log_softmax(-1)
    edges = torch.tensor([*kw["cutoffs"], kw["n_classes"]])
    cluster = torch.bucketize(target, edges, right=True)
    head_term = lsh.gather(-1, (c0 + cluster - 1).clamp_min(0).reshape(*target.shape, 1)).squeeze(-1)
    out = torch.where(cluster > 0, out - head_term, out)  # BUG
    return out, -out.mean()


@pytest.mark.parametrize(
    ("loss", "mutant", "path"),
    [
        ("linear_cross_entropy", lce_bias_dropped, "reference"),
        ("linear_cross_entropy", lce_smoothing_ignored, "reference"),
        ("linear_cross_entropy[chunked]", lce_chunked_float32, "chunked"),
    ],
    ids=["bias-dropped", "smoothing-ignored", "chunked-float32"],
)
def test_planted_linear_cross_entropy_bug_is_caught(loss: str, mutant: Any, path: str) -> None:
    from conformance.test_linear_cross_entropy import check, lce_cases

    assert caught(check, lce_cases("float64", path), OverrideBackend(cpu, {loss: mutant})) is not None


@pytest.mark.parametrize(
    "mutant", [asm_sum_not_mean, asm_tail_without_head], ids=["sum", "tail-without-head"]
)
def test_planted_adaptive_bug_is_caught(mutant: Any) -> None:
    from conformance.test_adaptive import asm_cases, check

    backend = OverrideBackend(cpu, {"AdaptiveLogSoftmaxWithLoss": mutant})
    assert caught(check, asm_cases("float64"), backend) is not None
