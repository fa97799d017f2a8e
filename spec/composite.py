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

ADAPTIVE_LOG_SOFTMAX = CompositeLoss(
    name="AdaptiveLogSoftmaxWithLoss",
    inner="log_softmax",
    tensors=("input", "target"),
    defaults={"div_value": 4.0, "head_bias": False},
    doc="""``torch.nn.AdaptiveLogSoftmaxWithLoss(in_features, n_classes, cutoffs, div_value=4.0,
head_bias=False)`` (a module; no functional form), Grave et al. 2016, as torch defines it
(``torch/nn/modules/adaptive.py``): edges ``c = cutoffs + [n_classes]``; a head
``Linear(H, c_0 + K, bias=head_bias)`` over the shortlist ``[0, c_0)`` and one entry per cluster;
cluster i in 1..K covers ``[c_{i-1}, c_i)`` through ``Linear(H, h_i, bias=False)`` then
``Linear(h_i, c_i - c_{i-1}, bias=False)``, ``h_i = int(H // div_value**i)`` (0 allowed: that
cluster's logits are all 0).

    log p(y | x) = log_softmax(head(x))[y]                                  y < c_0
                 = log_softmax(head(x))[c_0 + i - 1]
                   + log_softmax(tail_i(x))[y - c_{i-1}]                    c_{i-1} <= y < c_i

``forward(input, target)`` returns ``(output, loss)``: output_n = log p(y_n | x_n) (<= 0, not a
loss) and loss = -mean_n output_n, with no reduction, weight or ignore options; its gradients are
w.r.t. the input and every parameter (torch's names: head.weight, head.bias, tail.i.0.weight,
tail.i.1.weight).""",
)

#: the composite losses, by torch.nn name (not in ``spec.REGISTRY``; checked by
#: ``conformance/test_linear_cross_entropy.py`` and ``conformance/test_adaptive.py``)
COMPOSITE_LOSSES: dict[str, CompositeLoss] = {
    LINEAR_CROSS_ENTROPY.name: LINEAR_CROSS_ENTROPY,
    ADAPTIVE_LOG_SOFTMAX.name: ADAPTIVE_LOG_SOFTMAX,
}
#: those that are modules (built with parameters), not functions: no --impl for them yet
MODULES = frozenset({ADAPTIVE_LOG_SOFTMAX.name})
