"""Ranking and embedding losses: element-wise expressions of scores (or distances) and a label
in {-1, 1}."""

from __future__ import annotations

import sympy as sp

from spec._core import REAL, SIGN, Arg, Convention, Param, loss


def _margin_ranking_conventions(
    input1: sp.Symbol, input2: sp.Symbol, target: sp.Symbol, margin: sp.Symbol
) -> tuple[Convention, ...]:
    z = -target * (input1 - input2) + margin
    active = z >= 0  # torch's clamp_min(z, 0) passes the gradient where z >= 0, the kink included
    return (
        Convention(
            "margin_ranking_kink",
            "At z = -y (x1 - x2) + margin = 0 the gradient is that of z (torch computes the loss as "
            "clamp_min(z, 0), whose backward passes the gradient where z >= 0), not SymPy's "
            "Heaviside(0) = 1/2.",
            grads={
                "input1": sp.Piecewise((-target, active), (0, True)),
                "input2": sp.Piecewise((target, active), (0, True)),
                "target": sp.Piecewise((input2 - input1, active), (0, True)),
            },
            agrees_where=sp.Ne(z, 0),
            points=(
                # torch 2.13.0 float32: margin_ranking_loss([1.], [1.], [1.], margin=0, 'sum') -> 0,
                # gradients input1 -1, input2 1, target -0
                (
                    {"input1": 1.0, "input2": 1.0, "target": 1.0, "margin": 0.0},
                    {"value": 0.0, "grad_input1": -1.0, "grad_input2": 1.0, "grad_target": 0.0},
                ),
            ),
        ),
    )


@loss(
    family="ranking",
    signature=("input1", "input2", "target"),
    args=(
        Arg("input1", REAL, differentiable=True),
        Arg("input2", REAL, differentiable=True),
        Arg("target", SIGN, differentiable=True),
    ),
    params=(Param("margin", 0.0, sp.Interval(-sp.oo, sp.oo), "by how much input1 should exceed input2"),),
    conventions=_margin_ranking_conventions,
)
def margin_ranking_loss(
    input1: sp.Symbol, input2: sp.Symbol, target: sp.Symbol, margin: sp.Symbol
) -> sp.Expr:
    r"""Hinge on the ranking of two scores: y = 1 asks for x1 > x2 + margin, y = -1 for x2 > x1 + margin.

    .. math:: \ell = \max(0,\; -y\,(x_1 - x_2) + \text{margin})

    Three tensors of one shape (torch requires equal dims); ``reduction='mean'`` divides by the
    number of elements. Labels are documented as 1 or -1 and not checked; the target is
    differentiable (torch's composite implementation).
    Convention: torch.nn.functional.margin_ranking_loss; at the kink the gradient passes.
    Reference: PyTorch documentation, ``torch.nn.MarginRankingLoss``.
    """
    return sp.Max(0, -target * (input1 - input2) + margin)


def _hinge_embedding_conventions(
    input: sp.Symbol, target: sp.Symbol, margin: sp.Symbol
) -> tuple[Convention, ...]:
    gap = margin - input
    return (
        Convention(
            "hinge_embedding_kink",
            "For y = -1 at x = margin the gradient is -1 (torch computes clamp_min(margin - x, 0), "
            "whose backward passes the gradient where margin - x >= 0), not SymPy's Heaviside(0).",
            grads={"input": (1 + target) / 2 - (1 - target) / 2 * sp.Piecewise((1, gap >= 0), (0, True))},
            agrees_where=sp.Ne(gap, 0),
            points=(
                # torch 2.13.0 float64: hinge_embedding_loss([1.], [-1.], margin=1, 'none') -> 0,
                # input gradient -1
                ({"input": 1.0, "target": -1.0, "margin": 1.0}, {"value": 0.0, "grad_input": -1.0}),
            ),
        ),
    )


@loss(
    family="ranking",
    signature=("input", "target"),
    args=(
        Arg("input", REAL, differentiable=True),
        Arg("target", SIGN),  # used only in torch.where conditions: no gradient reaches it
    ),
    params=(Param("margin", 1.0, sp.Interval(-sp.oo, sp.oo), "the distance beyond which y = -1 costs 0"),),
    conventions=_hinge_embedding_conventions,
)
def hinge_embedding_loss(input: sp.Symbol, target: sp.Symbol, margin: sp.Symbol) -> sp.Expr:
    r"""Embedding hinge: the distance itself where y = 1, a hinge on the margin where y = -1.

    .. math:: \ell = \begin{cases} x & y = 1 \\ \max(0, \text{margin} - x) & y = -1 \end{cases}
              = \tfrac{1 + y}{2}\, x + \tfrac{1 - y}{2} \max(0, \text{margin} - x)

    Written as the second form, exact for y ∈ {-1, 1} (the documented labels; torch does not check
    them, and for other values adds both terms where y ≠ ±1), so that no branch is taken on the
    label. ``reduction='mean'`` divides by the number of elements.
    Convention: torch.nn.functional.hinge_embedding_loss (aten: where(y != 1, clamp_min(margin -
    x, 0), 0) + where(y != -1, x, 0)); at x = margin the gradient passes.
    Reference: PyTorch documentation, ``torch.nn.HingeEmbeddingLoss``.
    """
    return (1 + target) / 2 * input + (1 - target) / 2 * sp.Max(0, margin - input)
