"""Implementations that accept invalid input torch rejects (``conformance/bad_inputs.py``): right
on every valid call, so only the bad-input check (``conformance/test_bad_input.py``) catches them,
and only under ``--conformance-strict`` for an ``--impl`` (by default it is advisory)."""

from __future__ import annotations

from typing import Any

import torch

F = torch.nn.functional


def cross_entropy_clamping_targets(
    input: Any,
    target: Any,
    weight: Any = None,
    size_average: Any = None,
    ignore_index: int = -100,
    reduce: Any = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Any:
    """torch's cross_entropy, except that class indices outside [0, C) (other than ignore_index)
    are clamped into it instead of raising: a "robust" wrapper that hides a labelling bug."""
    if not target.is_floating_point() and target.shape != input.shape and input.dim() > 0:
        c = input.shape[1] if input.dim() > 1 else input.shape[0]
        target = torch.where(target == ignore_index, target, target.clamp(0, c - 1))
    return F.cross_entropy(
        input, target, weight=weight, size_average=size_average, ignore_index=ignore_index,
        reduce=reduce, reduction=reduction, label_smoothing=label_smoothing,
    )  # fmt: skip
