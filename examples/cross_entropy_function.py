"""A hand-written cross entropy: a ``torch.autograd.Function`` with its own backward.

It takes class-index targets (``-100`` ignored) or class probabilities, inputs ``(C)``, ``(N, C)``
or ``(N, C, d1, ...)``, and ``reduction``; ``weight`` and ``label_smoothing`` it does not take, so
the suite leaves them at their defaults. Its backward is written in torch ops on the saved inputs, so
it is differentiable itself and the second-order checks pass (a backward that is not, e.g. under
``torch.autograd.function.once_differentiable``, fails them with a message that says so). Validate it::

    pytest conformance --impl cross_entropy=examples.cross_entropy_function:cross_entropy --loss cross_entropy

``cross_entropy_ignoring_upstream`` is the same with one subtle bug: its backward forgets to
multiply by the incoming gradient, which is right only when that gradient is 1::

    pytest conformance --impl cross_entropy=examples.cross_entropy_function:cross_entropy_ignoring_upstream \\
        --loss cross_entropy
"""

from __future__ import annotations

from typing import Any

import torch

IGNORE = -100


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    shifted = logits - logits.amax(dim=-1, keepdim=True).detach()  # max-subtraction: no overflow
    return shifted - shifted.exp().sum(dim=-1, keepdim=True).log()


class _CrossEntropy(torch.autograd.Function):
    """Logits and targets with the class axis last; ``scale_upstream=False`` plants the bug."""

    @staticmethod
    def forward(
        ctx: Any, logits: torch.Tensor, target: torch.Tensor, reduction: str, scale_upstream: bool
    ) -> Any:
        log_p = _log_softmax(logits)
        if target.is_floating_point():  # probabilities
            keep = None
            loss = -(target * log_p).sum(dim=-1)
            count = loss.new_tensor(float(loss.numel()))
        else:  # class indices, IGNORE dropped
            keep = target != IGNORE
            safe = torch.where(keep, target, torch.zeros_like(target))
            loss = -log_p.gather(-1, safe.unsqueeze(-1)).squeeze(-1) * keep
            count = keep.sum().to(logits.dtype)
        ctx.save_for_backward(logits, target, count)  # inputs, not log_p: see backward
        ctx.reduction, ctx.scale_upstream = reduction, scale_upstream
        if reduction == "none":
            return loss
        total = loss.sum()
        return total / count if reduction == "mean" else total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        # log_p is recomputed from the saved logits with torch ops, so that this backward is itself
        # differentiable (double backward, Hessian-vector products); log_p saved from forward would
        # carry no graph, and the second derivative would silently be zero.
        logits, target, count = ctx.saved_tensors
        log_p = _log_softmax(logits)
        p = log_p.exp()
        if target.is_floating_point():
            d_logits = p * target.sum(dim=-1, keepdim=True) - target
            d_target = -log_p
            keep = None
        else:
            keep = (target != IGNORE).unsqueeze(-1)
            onehot = torch.zeros_like(p).scatter_(-1, torch.where(keep, target.unsqueeze(-1), 0), 1.0)
            d_logits, d_target = (p - onehot), None
        g = grad if ctx.scale_upstream else torch.ones_like(grad)
        g = g.unsqueeze(-1) if ctx.reduction == "none" else g
        if ctx.reduction == "mean":
            g = g / count
        d_logits = d_logits * g
        if keep is not None:
            d_logits = torch.where(keep, d_logits, torch.zeros_like(d_logits))
        if d_target is not None:
            d_target = d_target * g
        return d_logits, d_target, None, None


def _call(input: torch.Tensor, target: torch.Tensor, reduction: str, scale_upstream: bool) -> torch.Tensor:
    class_dim = 0 if input.dim() == 1 else 1
    logits = input.movedim(class_dim, -1)
    if target.is_floating_point():
        target = target.movedim(class_dim, -1)
    out: torch.Tensor = _CrossEntropy.apply(logits, target, reduction, scale_upstream)
    return out


def cross_entropy(input: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return _call(input, target, reduction, scale_upstream=True)


def cross_entropy_ignoring_upstream(
    input: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    return _call(input, target, reduction, scale_upstream=False)
