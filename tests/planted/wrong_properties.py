"""Implementations, each wrong in a way that one check kind of ``conformance.checks`` catches; used
by ``tests/test_replay.py`` to prove each kind's printed ``replay(...)`` line fails the same way.
Each has the torch.nn.functional signature of its loss."""

from __future__ import annotations

from typing import Any

import torch

F = torch.nn.functional


def mse_half(input: Any, target: Any, size_average: Any = None, reduce: Any = None,
             reduction: str = "mean", weight: Any = None) -> Any:  # fmt: skip
    """value: half of the loss"""
    return 0.5 * F.mse_loss(input, target, reduction=reduction, weight=weight)


def mse_sum_too_big(input: Any, target: Any, size_average: Any = None, reduce: Any = None,
                    reduction: str = "mean", weight: Any = None) -> Any:  # fmt: skip
    """reductions_agree: 'sum' is 1.5 × Σ 'none'"""
    out = F.mse_loss(input, target, reduction=reduction, weight=weight)
    return out * 1.5 if reduction == "sum" else out


def mse_none_times_batch(input: Any, target: Any, size_average: Any = None, reduce: Any = None,
                         reduction: str = "mean", weight: Any = None) -> Any:  # fmt: skip
    """batch_is_per_sample: each unreduced loss scaled by the batch size"""
    out = F.mse_loss(input, target, reduction=reduction, weight=weight)
    return out * input.shape[0] if reduction == "none" and input.ndim else out


def l1_offset(input: Any, target: Any, size_average: Any = None, reduce: Any = None,
              reduction: str = "mean", weight: Any = None) -> Any:  # fmt: skip
    """zero_at_target: 1e-3 added to the loss"""
    return F.l1_loss(input, target, reduction=reduction, weight=weight) + 1e-3


def ce_plus_linear(input: Any, target: Any, weight: Any = None, size_average: Any = None,
                   ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                   label_smoothing: float = 0.0) -> Any:  # fmt: skip
    """shift_invariant and grad_sums_to_zero: 0.01 × Σ input added to the loss"""
    out = F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                          label_smoothing=label_smoothing)  # fmt: skip
    return out + 0.01 * input.sum()


def raises(input: Any, target: Any, *args: Any, **kwargs: Any) -> Any:
    """every check kind: the implementation raises on valid input"""
    raise RuntimeError("kernel exploded")


def ce_ignores_smoothing(input: Any, target: Any, weight: Any = None, size_average: Any = None,
                         ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                         label_smoothing: float = 0.0) -> Any:  # fmt: skip
    """inside torch's smoothing-mean divergence, but not as torch fails there: label_smoothing ignored"""
    return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction)


def ce_like_torch(input: Any, target: Any, weight: Any = None, size_average: Any = None,
                  ignore_index: int = -100, reduce: Any = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> Any:  # fmt: skip
    """torch's own cross_entropy, called through an --impl: fails exactly where torch does"""
    return F.cross_entropy(input, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing)  # fmt: skip


def l1_broadcasts_silently(input: Any, target: Any, size_average: Any = None, reduce: Any = None,
                           reduction: str = "mean", weight: Any = None) -> Any:  # fmt: skip
    """l1_loss written as (input - target).abs(): right values, but no UserWarning where a target of
    another shape is broadcast (torch's contract warns)."""
    e = (input - target).abs()
    return e if reduction == "none" else e.sum() if reduction == "sum" else e.mean()


def poisson_formula(input: Any, target: Any, log_input: bool = True, full: bool = False,
                    size_average: Any = None, eps: float = 1e-8, reduce: Any = None,
                    reduction: str = "mean") -> Any:  # fmt: skip
    """A correct poisson_nll_loss written from its formula (not torch's operation order): its NaN
    target gradient at target 0 with full=True is torch's own (a known divergence); its finite
    elements differ from torch's by an ulp, inside the error model."""
    e = input.exp() - target * input if log_input else input - target * (input + eps).log()
    if full:
        st = target * target.log() - target + 0.5 * (2 * torch.pi * target).log()
        e = e + torch.where(target > 1, st, torch.zeros_like(st))
    return e if reduction == "none" else e.sum() if reduction == "sum" else e.mean()
