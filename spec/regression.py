"""Regression losses: element-wise expressions of ``input`` and ``target``.

Each function returns the unreduced loss of one element; the reduction (``none``/``mean``/``sum``) is
applied by the caller from the variant's ``mean_weight``.
"""

from __future__ import annotations

import sympy as sp

from spec._core import NONNEGATIVE, REAL, Arg, Convention, Param, loss

_PAIR = (
    Arg("input", REAL, differentiable=True),
    Arg("target", REAL, differentiable=True, broadcast="warn"),  # torch warns, then broadcasts
)
_SIGNATURE = ("input", "target")
# l1_loss and mse_loss take a functional-only ``weight`` of input's exact shape (torch >= 2.6);
# 'mean' is then Σ w·ℓ / Σ w.
# The weight is differentiable (plain tensor arithmetic in torch).
_WEIGHTED = (*_PAIR, Arg("weight", NONNEGATIVE, differentiable=True, optional=True, broadcast="same"))
_WEIGHTED_SIGNATURE = ("input", "target", "weight")


def _abs_subgradient(input: sp.Symbol, target: sp.Symbol) -> tuple[Convention, ...]:
    return (
        Convention(
            "abs_subgradient_zero",
            "d|d|/dd at d = 0 is 0 (PyTorch's sgn(0) = 0), on input and target alike; SymPy's "
            "derivative of Abs over the reals is sign(d), which already says so.",
            agrees_where=sp.Ne(input, target),
            points=(({"input": 0.0, "target": 0.0}, {"grad_input": 0.0, "grad_target": 0.0}),),
        ),
    )


@loss(
    family="regression",
    signature=_WEIGHTED_SIGNATURE,
    args=_WEIGHTED,
    conventions=_abs_subgradient,
    mean_weight=lambda weight: weight,
    properties=("zero_at_target",),
)
def l1_loss(input: sp.Symbol, target: sp.Symbol, weight: sp.Symbol) -> sp.Expr:
    r"""Absolute error, optionally weighted.

    .. math:: \ell = w\,|x - y|

    ``reduction='mean'`` is Σ w·|x - y| / Σ w (Σ over elements; w = 1 without a weight).
    Convention: torch.nn.functional.l1_loss; the gradient at x = y is 0.
    Reference: PyTorch documentation, ``torch.nn.L1Loss``; ``weight`` from PR #132049.
    """
    return weight * sp.Abs(input - target)


@loss(
    family="regression",
    signature=_WEIGHTED_SIGNATURE,
    args=_WEIGHTED,
    mean_weight=lambda weight: weight,
    properties=("zero_at_target",),
)
def mse_loss(input: sp.Symbol, target: sp.Symbol, weight: sp.Symbol) -> sp.Expr:
    r"""Squared error, optionally weighted.

    .. math:: \ell = w\,(x - y)^2

    ``reduction='mean'`` is Σ w·(x - y)² / Σ w (Σ over elements; w = 1 without a weight).
    Convention: torch.nn.functional.mse_loss.
    Reference: PyTorch documentation, ``torch.nn.MSELoss``; ``weight`` from PR #132049.
    """
    return weight * (input - target) ** 2


def _smooth_l1_conventions(input: sp.Symbol, target: sp.Symbol, beta: sp.Symbol) -> tuple[Convention, ...]:
    return (
        Convention(
            "smooth_l1_branch_at_beta",
            "|d| = beta takes the linear branch (PyTorch tests |d| < beta); value and gradient are "
            "continuous there, so the gradient is sign(d) = ±1, and the second derivative is the "
            "linear branch's, 0 (1/beta only for |d| < beta; measured on torch 2.13: d = ±beta "
            "gives a double backward of 0, the smooth_l1_kink_wrong_side mutant gives 1/beta).",
            points=(
                # golden values from the fact sheet, beta = 2, d = 2 -> 1.0 (linear: |d| - beta/2)
                ({"input": 2.0, "target": 0.0, "beta": 2.0}, {"value": 1.0, "grad_input": 1.0}),
            ),
        ),
        Convention(
            "smooth_l1_beta_zero_is_l1",
            "beta = 0 is exactly L1: the quadratic branch |d| < 0 is empty, so the value is |d| and "
            "the gradient sign(d), 0 at d = 0 (torch routes beta = 0 to l1_loss, PR #97022).",
            points=(
                ({"input": 0.0, "target": 0.0, "beta": 0.0}, {"value": 0.0, "grad_input": 0.0}),
                ({"input": -3.0, "target": 0.0, "beta": 0.0}, {"value": 3.0, "grad_input": -1.0}),
            ),
        ),
    )


@loss(
    family="regression",
    signature=_SIGNATURE,
    args=_PAIR,
    params=(Param("beta", 1.0, sp.Interval(0, sp.oo), "width of the quadratic zone; 0 means L1"),),
    conventions=_smooth_l1_conventions,
    properties=("zero_at_target",),
)
def smooth_l1_loss(input: sp.Symbol, target: sp.Symbol, beta: sp.Symbol) -> sp.Expr:
    r"""Quadratic within ``beta`` of the target, linear beyond.

    .. math:: \ell = \begin{cases} \tfrac{1}{2} d^2 / \beta & |d| < \beta \\
              |d| - \tfrac12 \beta & \text{otherwise} \end{cases}, \quad d = x - y

    Convention: torch.nn.functional.smooth_l1_loss; |d| = beta is the linear branch; beta = 0 is L1.
    Reference: Girshick, *Fast R-CNN* (2015); PyTorch documentation, ``torch.nn.SmoothL1Loss``.
    """
    d = input - target
    return sp.Piecewise(
        (sp.Rational(1, 2) * d**2 / beta, sp.Abs(d) < beta),
        (sp.Abs(d) - sp.Rational(1, 2) * beta, True),
    )


def _huber_conventions(input: sp.Symbol, target: sp.Symbol, delta: sp.Symbol) -> tuple[Convention, ...]:
    return (
        Convention(
            "huber_branch_at_delta",
            "|d| = delta takes the linear branch (aten's huber_loss tests |d| < delta); value and "
            "gradient are continuous there, so the gradient is delta·sign(d) = d.",
            points=(
                # torch 2.13.0 float64: huber_loss([2., -2., 0.], 0, delta=2, 'none') -> [2., 2., 0.],
                # gradient [2., -2., 0.]
                ({"input": 2.0, "target": 0.0, "delta": 2.0}, {"value": 2.0, "grad_input": 2.0}),
                ({"input": -2.0, "target": 0.0, "delta": 2.0}, {"value": 2.0, "grad_input": -2.0}),
            ),
        ),
    )


@loss(
    family="regression",
    signature=("input", "target", "weight"),
    args=_WEIGHTED,
    params=(Param("delta", 1.0, sp.Interval.open(0, sp.oo), "where the quadratic zone ends (> 0)"),),
    conventions=_huber_conventions,
    properties=("zero_at_target",),
)
def huber_loss(input: sp.Symbol, target: sp.Symbol, weight: sp.Symbol, delta: sp.Symbol) -> sp.Expr:
    r"""Quadratic within ``delta`` of the target, linear beyond, optionally weighted.

    .. math:: \ell = w \begin{cases} \tfrac{1}{2} d^2 & |d| < \delta \\
              \delta\,(|d| - \tfrac12 \delta) & \text{otherwise} \end{cases}, \quad d = x - y

    ``reduction='mean'`` is Σ ℓ / n (ℓ weighted already), n the number of elements: unlike
    l1_loss and mse_loss (Σ ℓ / Σ w), torch 2.13's functional huber_loss takes the plain mean of the
    weighted losses
    (``weighted_loss.mean()`` in torch/nn/functional.py). ``delta`` must be > 0 (torch raises).
    Convention: torch.nn.functional.huber_loss; |d| = delta is the linear branch. Equal to
    ``delta · smooth_l1_loss(x, y, beta=delta)``.
    Reference: Huber, *Robust Estimation of a Location Parameter* (1964); PyTorch documentation,
    ``torch.nn.HuberLoss``.
    """
    d = input - target
    return weight * sp.Piecewise(
        (sp.Rational(1, 2) * d**2, sp.Abs(d) < delta),
        (delta * (sp.Abs(d) - sp.Rational(1, 2) * delta), True),
    )
