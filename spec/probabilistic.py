"""Likelihood and divergence losses: element-wise expressions of a prediction and an observation
(``kl_div``, ``poisson_nll_loss``, ``gaussian_nll_loss``)."""

from __future__ import annotations

import sympy as sp

from spec._core import (
    LOG_PROBABILITY,
    NONNEGATIVE,
    PROBABILITIES,
    REAL,
    Arg,
    Convention,
    Param,
    clamped,
    flag,
    loss,
    xlogy,
)

# ---------------------------------------------------------------------------------------------
# kl_div


@loss(
    family="probabilistic",
    signature=("input", "target", "size_average", "reduce", "reduction", "log_target"),
    args=(
        Arg("input", REAL, differentiable=True),
        Arg(
            "target",
            PROBABILITIES,
            differentiable=True,
            broadcast="silent",
            when=(("log_target", LOG_PROBABILITY),),
        ),
    ),
    params=(flag("log_target", False, "the target holds log-probabilities"),),
    reductions=("none", "mean", "sum", "batchmean"),
    reduction_warnings={
        # torch/nn/functional.py kl_div, on every call with reduction='mean' (torch 2.13.0)
        "mean": "reduction: 'mean' divides the total loss by both the batch size and the support "
        "size. 'batchmean' divides only by the batch size, and aligns with the KL div math definition."
    },
)
def kl_div(input: sp.Symbol, target: sp.Symbol, log_target: sp.Symbol) -> sp.Expr:
    r"""Pointwise Kullback-Leibler divergence of a target distribution from ``exp(input)``.

    .. math:: \ell = \begin{cases} e^{y}\,(y - x) & \text{log\_target} \\
              \operatorname{xlogy}(y, y) - y\,x & \text{otherwise} \end{cases}

    ``input`` holds log-probabilities; ``target`` probabilities (log-probabilities with
    ``log_target=True``); neither is checked. ``xlogy(y, y) = y log y`` is 0 at ``y = 0``
    (torch 2.13 calls ``at::xlogy``). ``reduction='mean'`` divides by the number of elements (and
    torch warns on every such call that it is not the KL divergence); ``'batchmean'`` divides by
    ``input.size(0)`` (by 1 for a 0-d input). Target and input broadcast without a warning.
    The target gradient without log_target is ``log y + 1 - x``: -inf at ``y = 0`` (torch gives
    NaN there: a known divergence).
    Convention: torch.nn.functional.kl_div.
    Reference: Kullback & Leibler (1951); PyTorch documentation, ``torch.nn.KLDivLoss``.
    """
    return sp.Piecewise(
        (sp.exp(target) * (target - input), log_target),
        (xlogy(target, target) - target * input, True),
    )


# ---------------------------------------------------------------------------------------------
# poisson_nll_loss


def _stirling(target: sp.Symbol) -> sp.Expr:
    """Stirling's approximation of log(y!), which ``full=True`` adds where y > 1 only (torch masks
    it to 0 for y <= 1, so y = 1 adds 0 although the approximation there is 0.0811)."""
    return sp.Piecewise(
        (target * sp.log(target) - target + sp.log(2 * sp.pi * target) / 2, target > 1), (0, True)
    )


@loss(
    family="probabilistic",
    signature=("input", "target", "log_input", "full", "size_average", "eps", "reduce", "reduction"),
    args=(
        Arg("input", NONNEGATIVE, differentiable=True, when=(("log_input", REAL),)),
        Arg("target", NONNEGATIVE, differentiable=True, broadcast="silent"),
    ),
    params=(
        flag("log_input", True, "input is the log of the rate (else the rate itself)"),
        flag("full", False, "add the Stirling term of log(target!)"),
        Param("eps", 1e-8, sp.Interval.open(0, sp.oo), "added to the rate inside the log (log_input=False)"),
    ),
)
def poisson_nll_loss(
    input: sp.Symbol, target: sp.Symbol, log_input: sp.Symbol, full: sp.Symbol, eps: sp.Symbol
) -> sp.Expr:
    r"""Negative log likelihood of a count under a Poisson distribution (up to log y!).

    .. math:: \ell = \begin{cases} e^{x} - y\,x & \text{log\_input} \\
              x - y \log(x + \varepsilon) & \text{otherwise} \end{cases}
              \; + \; [\text{full}]\,[y > 1]\,(y \log y - y + \tfrac12 \log(2\pi y))

    The Stirling term applies only where the target is > 1 (torch masks it to 0 elsewhere).
    Targets are not checked (negative ones are accepted); target and input broadcast silently.
    ``reduction='mean'`` divides by the number of elements.
    Convention: torch.nn.functional.poisson_nll_loss.
    Reference: PyTorch documentation, ``torch.nn.PoissonNLLLoss``.
    """
    base = sp.Piecewise(
        (sp.exp(input) - target * input, log_input),
        (input - target * sp.log(input + eps), True),
    )
    return base + sp.Piecewise((_stirling(target), full), (0, True))


# ---------------------------------------------------------------------------------------------
# gaussian_nll_loss


def _gaussian_conventions(
    input: sp.Symbol, target: sp.Symbol, var: sp.Symbol, eps: sp.Symbol
) -> tuple[Convention, ...]:
    return (
        Convention(
            "gaussian_var_clamp_straight_through",
            "The variance is clamped at eps in the forward (var.clamp_(min=eps) under no_grad on a "
            "clone), so the var gradient is the derivative w.r.t. the clamped variance, passed "
            "straight through to var even where the clamp is active: ½ (1/v - (x - y)²/v²), "
            "v = max(var, eps), not 0. The spec writes the clamp as clamped(var, eps) (value max, "
            "derivative 1), so this gradient, and the second derivatives torch's double backward "
            "takes of it, are derived.",
            points=(
                # torch 2.13.0 float64 (fact sheet §2.7): x=0, y=1, var=1e-8, full, 'mean' ->
                # 499994.01118325425; the var gradient there is ½(1/1e-6 - 1/1e-12) = -499999500000
                (
                    {"input": 0.0, "target": 1.0, "var": 1e-8, "full": True, "eps": 1e-6},
                    {"value": 499994.01118325425, "grad_var": -499999500000.0},
                ),
            ),
        ),
    )


@loss(
    family="probabilistic",
    signature=("input", "target", "var", "full", "eps", "reduction"),
    args=(
        Arg("input", REAL, differentiable=True),
        Arg("target", REAL, differentiable=True, broadcast="silent"),
        Arg("var", NONNEGATIVE, differentiable=True, broadcast="var"),
    ),
    params=(
        flag("full", False, "add the constant ½ log(2π)"),
        Param("eps", 1e-6, sp.Interval.open(0, sp.oo), "the variance is clamped below at eps"),
    ),
    conventions=_gaussian_conventions,
)
def gaussian_nll_loss(
    input: sp.Symbol, target: sp.Symbol, var: sp.Symbol, full: sp.Symbol, eps: sp.Symbol
) -> sp.Expr:
    r"""Negative log likelihood of a target under a Gaussian of mean ``input`` and variance ``var``.

    .. math:: \ell = \tfrac12 \left(\log v + \frac{(x - y)^2}{v}\right) + [\text{full}]\,\tfrac12
              \log(2\pi), \quad v = \max(\text{var}, \varepsilon)

    ``var`` has input's shape, or input's shape without its last dim (one variance per sample), or
    input's shape with exactly one dim of size 1; any other shape, or a negative entry, raises.
    The clamp is straight-through in the gradient (a declared convention). ``reduction='mean'``
    divides by the number of elements of the broadcast shape.
    Convention: torch.nn.functional.gaussian_nll_loss (pure Python in torch/nn/functional.py).
    Reference: Nix & Weigend (1994); PyTorch documentation, ``torch.nn.GaussianNLLLoss``.
    """
    v = clamped(var, eps)  # straight-through: torch clamps a clone under no_grad
    return ((sp.log(v) + (input - target) ** 2 / v) / 2) + sp.Piecewise(
        (sp.log(2 * sp.pi) / 2, full), (0, True)
    )
