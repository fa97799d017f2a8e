"""Wrong double backwards: losses whose value and first derivative are right and whose second
derivative is not, one planted bug each. Each is a plain function with the torch.nn.functional
signature of its loss (run through ``--impl`` as a user's would be), built on a
``torch.autograd.Function`` whose backward is the place of the bug.

============================  ======================  ==============================================
mutant                        loss                    planted bug
============================  ======================  ==============================================
bce_backward_under_no_grad    binary_cross_entropy    the backward runs under ``torch.no_grad()``:
                                                      its gradient cannot be differentiated again
ce_backward_detached          cross_entropy           the backward's softmax is of ``input.detach()``
ce_hessian_no_cross_term      cross_entropy           softmax formed as exp(x - logsumexp(x).detach()):
                                                      the Hessian diag(p) - p·pᵀ loses its -p·pᵀ
bce_double_backward_no_eps    binary_cross_entropy    the double backward (x² - 2xy + y)/(x²(1-x)²),
                                                      without torch's eps: inf at x ∈ {0, 1}
mse_mixed_partial_sign        mse_loss                ∂²/∂x∂y is +2/n, not -2/n (the gradient's value
                                                      is right)
smooth_l1_kink_wrong_side     smooth_l1_loss          at |d| = β the gradient takes the quadratic
                                                      branch d/β (its value is the same ±1), so the
                                                      second derivative is 1/β where torch's is 0
============================  ======================  ==============================================
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

__all__ = [
    "bce_backward_under_no_grad",
    "bce_double_backward_no_eps",
    "ce_backward_detached",
    "ce_hessian_no_cross_term",
    "mse_mixed_partial_sign",
    "smooth_l1_kink_wrong_side",
]

#: mutant -> its torch.nn.functional loss
LOSS_OF = {
    "bce_backward_under_no_grad": "binary_cross_entropy",
    "bce_double_backward_no_eps": "binary_cross_entropy",
    "ce_backward_detached": "cross_entropy",
    "ce_hessian_no_cross_term": "cross_entropy",
    "mse_mixed_partial_sign": "mse_loss",
    "smooth_l1_kink_wrong_side": "smooth_l1_loss",
}

_EPS = 1e-12  # torch's clamp of x(1 - x) in binary_cross_entropy_backward (aten, a float)


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def _bce_grad(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """torch's input gradient of binary_cross_entropy per element (upstream 1)."""
    return w * (x - y) / torch.clamp(x * (1 - x), min=torch.tensor(_EPS, dtype=torch.float32).item())


def _bce_target_grad(x: torch.Tensor, w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """torch's target gradient (``binary_cross_entropy_target_backward``): -logit(x)·w·u."""
    return -torch.logit(x) * w * u


class _BceNoGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, y, w)
        return F.binary_cross_entropy(x, y, w, reduction="none")

    @staticmethod
    def backward(ctx: Any, u: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, y, w = ctx.saved_tensors
        with torch.no_grad():  # the bug
            return u * _bce_grad(x, y, w), _bce_target_grad(x, w, u), None


def bce_backward_under_no_grad(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    w = torch.ones_like(input) if weight is None else weight.expand_as(input)
    return _reduce(_BceNoGrad.apply(input, target, w), reduction)


class _BceGradNoEps(torch.autograd.Function):
    """The first derivative as torch's (with its eps); its own derivative without the eps."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, y, w, u)
        return u * _bce_grad(x, y, w)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, y, w, u = ctx.saved_tensors
        hxx = w * (x * x - 2 * x * y + y) / (x * x * (1 - x) * (1 - x))  # the bug: no eps
        hxy = -w / torch.clamp(x * (1 - x), min=_EPS)
        return g * u * hxx, g * u * hxy, None, g * _bce_grad(x, y, w)


class _BceOwnDoubleBackward(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, y, w)
        return F.binary_cross_entropy(x, y, w, reduction="none")

    @staticmethod
    def backward(ctx: Any, u: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, y, w = ctx.saved_tensors
        return _BceGradNoEps.apply(x, y, w, u), _bce_target_grad(x, w, u), None


def bce_double_backward_no_eps(
    input: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    w = torch.ones_like(input) if weight is None else weight.expand_as(input)
    return _reduce(_BceOwnDoubleBackward.apply(input, target, w), reduction)


def _ce(input: torch.Tensor, target: torch.Tensor, softmax: Any, **kw: Any) -> torch.Tensor:
    """cross_entropy with class-index targets whose input gradient is ``a - p·Σa`` (log_softmax's
    backward; ``a`` the gradient w.r.t. the log-probabilities, which does not depend on the input)
    with ``p = softmax(x, dim)`` in the backward. Probability targets: torch's own function."""
    if target.dtype != torch.int64:
        return F.cross_entropy(input, target, **kw)
    cdim = 1 if input.ndim > 1 else 0
    w, ignore, reduction, eps = kw["weight"], kw["ignore_index"], kw["reduction"], kw["label_smoothing"]

    def by_logp(logp: torch.Tensor) -> torch.Tensor:
        """torch's cross entropy as the linear function of the log-probabilities it is."""
        nll = F.nll_loss(logp, target, w, ignore_index=ignore, reduction=reduction)
        if not eps:
            return nll
        c = logp.shape[cdim]
        shape = [1] * logp.ndim
        shape[cdim] = c
        ww = torch.ones(c, dtype=logp.dtype) if w is None else w
        mask = target != ignore
        smooth = -(logp * ww.view(shape)).sum(cdim) * mask / c
        if reduction == "none":
            return (1 - eps) * nll + eps * smooth
        den = (ww[target.clamp(min=0)] * mask).sum() if reduction == "mean" else 1
        return (1 - eps) * nll + eps * smooth.sum() / den

    class Ce(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(x)
            return F.cross_entropy(x, target, **kw)

        @staticmethod
        def backward(ctx: Any, u: torch.Tensor) -> tuple[torch.Tensor]:
            (x,) = ctx.saved_tensors
            with torch.enable_grad():
                logp = F.log_softmax(x.detach(), cdim).requires_grad_()
                (a,) = torch.autograd.grad(by_logp(logp), logp, u)
            # a: linear in u, so its derivative w.r.t. u is a / u's; u is a constant of the graph
            return (a - softmax(x, cdim) * a.sum(cdim, keepdim=True),)

    return Ce.apply(input)


def _ce_signature(softmax: Any) -> Any:
    def mutant(
        input: torch.Tensor,
        target: torch.Tensor,
        weight: torch.Tensor | None = None,
        size_average: bool | None = None,
        ignore_index: int = -100,
        reduce: bool | None = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> torch.Tensor:
        kw = {
            "weight": weight,
            "ignore_index": ignore_index,
            "reduction": reduction,
            "label_smoothing": label_smoothing,
        }
        return _ce(input, target, softmax, **kw)

    return mutant


ce_backward_detached = _ce_signature(lambda x, d: torch.softmax(x.detach(), d))  # the bug: detach
ce_backward_detached.__name__ = ce_backward_detached.__qualname__ = "ce_backward_detached"
ce_hessian_no_cross_term = _ce_signature(
    lambda x, d: torch.exp(x - torch.logsumexp(x, d, keepdim=True).detach())  # the bug: .detach()
)
ce_hessian_no_cross_term.__name__ = ce_hessian_no_cross_term.__qualname__ = "ce_hessian_no_cross_term"


def mse_mixed_partial_sign(
    input: torch.Tensor,
    target: torch.Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    class Mse(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(x, y)
            return F.mse_loss(x, y, reduction=reduction, weight=weight)

        @staticmethod
        def backward(ctx: Any, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = ctx.saved_tensors
            w = torch.ones_like(x) if weight is None else weight.expand_as(x)
            scale = u * (w.sum() if reduction == "mean" and weight is not None else 1)
            if reduction == "mean":
                scale = u / (w.sum() if weight is not None else x.numel())
            flipped = y - 2 * (y - y.detach())  # the bug: the value of y, its derivative -1
            g = 2 * w * (x - flipped) * scale
            return g, 2 * w * (y - x) * scale

    b = torch.broadcast_tensors(input, target)
    return Mse.apply(*b)


def smooth_l1_kink_wrong_side(
    input: torch.Tensor,
    target: torch.Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> torch.Tensor:
    class SmoothL1(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            ctx.save_for_backward(x, y)
            return F.smooth_l1_loss(x, y, reduction=reduction, beta=beta)

        @staticmethod
        def backward(ctx: Any, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            x, y = ctx.saved_tensors
            d = x - y
            if beta == 0:
                g = torch.sign(d)
            else:  # the bug: <= where torch's is <
                g = torch.where(d.abs() <= beta, d / beta, torch.sign(d))
            g = g * (u / d.numel() if reduction == "mean" else u)
            return g, -g

    return SmoothL1.apply(*torch.broadcast_tensors(input, target))
