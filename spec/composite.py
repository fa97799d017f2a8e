"""Losses defined by composing a spec'd loss with a linear map: ``linear_cross_entropy``.

``linear_cross_entropy(input, linear_weight, target, *, linear_bias, weight, reduction,
ignore_index, label_smoothing, options)`` is, by its definition in torch 2.13
(``torch.nn.functional.linear_cross_entropy``; its reference path is written as exactly this),

    cross_entropy(input @ linear_weight.T + linear_bias, target, weight, ignore_index,
                  label_smoothing, reduction)

with cross_entropy as spec'd in ``spec.classification`` (both target kinds, class weights,
label smoothing, the weighted mean). Its own contract on top of that:

* ``ignore_index=None`` (the default) means -100 for class-index targets; with probability
  targets any explicit value raises (cross_entropy accepts negative ones);
* input (H) or (N, H); linear_weight (C, H); linear_bias (C) or None (0); the logits are
  (C) or (N, C). (torch also takes a K-dim linear_weight (C, d1, ..., dk, H): not spec'd here yet.)
* the gradients are those of the composition w.r.t. input, linear_weight and linear_bias;
* ``options=LinearCrossEntropyOptions(...)`` selects torch's chunked path, which must compute the
  same function (the suite checks both paths against the one definition).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CompositeLoss:
    """A loss defined as ``inner`` of a linear map of its input: its torch.nn.functional name,
    positional tensors, keyword options and their defaults."""

    name: str
    inner: str
    tensors: tuple[str, ...]
    defaults: dict[str, object]
    doc: str


LINEAR_CROSS_ENTROPY = CompositeLoss(
    name="linear_cross_entropy",
    inner="cross_entropy",
    tensors=("input", "linear_weight", "target"),
    defaults={
        "linear_bias": None,
        "weight": None,
        "reduction": "mean",
        "ignore_index": None,
        "label_smoothing": 0.0,
        "options": None,
    },
    doc=__doc__ or "",
)

#: the composite losses, by torch.nn.functional name (not in ``spec.REGISTRY``;
#: ``conformance/test_linear_cross_entropy.py`` checks them)
COMPOSITE_LOSSES: dict[str, CompositeLoss] = {LINEAR_CROSS_ENTROPY.name: LINEAR_CROSS_ENTROPY}
