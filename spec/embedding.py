"""Embedding losses: a sample is a vector along the feature axis (the last dim of (N, D) or (D)),
and the loss is a function of similarities or distances between such vectors.

Expressions are per sample: ``input1[k]`` is feature ``k`` of one sample, sums run over ``k`` in
``[0, C)`` (``C`` is the feature count here: the feature axis shares the class axis's symbols,
``spec._core.FEATURE_AXIS``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sympy as sp

from spec._core import EPSILON_F32_1E12, REAL, SIGN, Arg, C, Param, clamped, flag, hinge, k, loss, root


def _hinge_passing(v: sp.Expr) -> sp.Expr:
    """max(0, v) as torch's ``clamp_min(v, 0)``: its gradient passes where v = 0 (the kink)."""
    return hinge(v, 1)


# ---------------------------------------------------------------------------------------------
# cosine_embedding_loss


@loss(
    family="embedding",
    signature=("input1", "input2", "target", "margin"),
    args=(
        Arg("input1", REAL, axis="feature", differentiable=True),
        Arg("input2", REAL, axis="feature", differentiable=True),
        Arg("target", SIGN),  # one label per sample; used only in torch.where conditions
    ),
    params=(
        Param("margin", 0.0, sp.Reals, "cosines of y = -1 pairs below it cost 0 (documented in [-1, 1])"),
    ),
    input_ndims=(1, 2),
    class_dim="last",
)
def cosine_embedding_loss(
    input1: sp.IndexedBase, input2: sp.IndexedBase, target: sp.Symbol, margin: sp.Symbol
) -> sp.Expr:
    r"""Cosine similarity of two vectors against a label: pull together (y = 1), push apart (y = -1).

    .. math:: \cos = \frac{\sum_k x_{1k} x_{2k}}
              {\sqrt{(\sum_k x_{1k}^2 + \epsilon)(\sum_k x_{2k}^2 + \epsilon)}}, \quad
              \ell = \begin{cases} 1 - \cos & y = 1 \\ \max(0, \cos - \text{margin}) & y = -1 \\
              0 & \text{otherwise} \end{cases}

    ``ε = float32(1e-12)`` is ADDED to each squared norm (aten ``cosine_embedding_loss``; not the
    clamp of ``F.cosine_similarity``), so zero vectors give cos = 0. Inputs (N, D) with target (N),
    or (D) with a 0-d target; ``reduction='mean'`` divides by N. Labels other than ±1 give 0 (torch
    does not check them); no gradient reaches the target.
    Convention: torch.nn.functional.cosine_embedding_loss; at cos = margin (y = -1) the gradient
    passes (``clamp_min``).
    Reference: PyTorch documentation, ``torch.nn.CosineEmbeddingLoss``.
    """
    eps = EPSILON_F32_1E12
    dot = sp.Sum(input1[k] * input2[k], (k, 0, C - 1))
    sq1 = sp.Sum(input1[k] ** 2, (k, 0, C - 1)) + eps
    sq2 = sp.Sum(input2[k] ** 2, (k, 0, C - 1)) + eps
    cos = dot / sp.sqrt(sq1 * sq2)
    return sp.Piecewise(
        (1 - cos, sp.Eq(target, 1)), (_hinge_passing(cos - margin), sp.Eq(target, -1)), (0, True)
    )


# ---------------------------------------------------------------------------------------------
# triplet_margin_loss and triplet_margin_with_distance_loss


def pairwise_distance(a: sp.IndexedBase, b: sp.IndexedBase, p: sp.Expr, eps: sp.Expr) -> sp.Expr:
    r"""``torch.pairwise_distance(a, b, p, eps)`` of one sample: :math:`\lVert a - b + \epsilon \rVert_p`
    over the feature axis (eps is added to the difference, so ``d(a, a) = eps·D^{1/p}``).

    Written with torch's gradient convention at a zero distance: 0 (aten ``norm_backward`` masks
    the entries where the norm is 0; ``spec._core.root``). p = 1 is written ``|u|``: torch's 1-norm
    backward is ``sgn(u)``, whose derivative is 0, where the general ``p (p - 1) |u|^(p-2)`` is
    0·inf at a zero component."""
    u = a[k] - b[k] + eps
    one = root(sp.Sum(sp.Abs(u), (k, 0, C - 1)), 1)
    return sp.Piecewise((one, sp.Eq(p, 1)), (root(sp.Sum(sp.Abs(u) ** p, (k, 0, C - 1)), p), True))


def _triplet(d_ap: sp.Expr, d_an: sp.Expr, d_pn: sp.Expr, margin: sp.Expr, swap: sp.Symbol) -> sp.Expr:
    # torch.min(d_an, d_pn): at a tie its backward gives each side half the gradient, as SymPy's
    # derivative of Min does (Heaviside(0) = 1/2)
    negative = sp.Piecewise((sp.Min(d_an, d_pn), swap), (d_an, True))
    return _hinge_passing(margin + d_ap - negative)


_TRIPLET_ARGS = (
    Arg("anchor", REAL, axis="feature", differentiable=True),
    Arg("positive", REAL, axis="feature", differentiable=True),
    Arg("negative", REAL, axis="feature", differentiable=True),
)
_MARGIN = Param("margin", 1.0, sp.Interval.open(0, sp.oo), "how much farther the negative must be (> 0)")
_SWAP = flag("swap", False, "use the positive-negative distance where it is the smaller")


@loss(
    family="embedding",
    signature=("anchor", "positive", "negative", "margin", "p", "eps", "swap"),
    args=_TRIPLET_ARGS,
    params=(
        _MARGIN,
        Param("p", 2.0, sp.Interval(1, sp.oo), "the norm degree of the distance (a norm: p >= 1)"),
        Param("eps", 1e-6, sp.Reals, "added to each difference inside the distance"),
        _SWAP,
    ),
    class_dim="last",
)
def triplet_margin_loss(
    anchor: sp.IndexedBase,
    positive: sp.IndexedBase,
    negative: sp.IndexedBase,
    margin: sp.Symbol,
    p: sp.Symbol,
    eps: sp.Symbol,
    swap: sp.Symbol,
) -> sp.Expr:
    r"""Triplet hinge: the anchor must be nearer the positive than the negative, by the margin.

    .. math:: \ell = \max(0,\; d(a, p) - d(a, n) + \text{margin}), \quad
              d(x, y) = \lVert x - y + \epsilon \rVert_p

    With ``swap``, :math:`d(a, n)` is replaced by :math:`\min(d(a, n), d(p, n))` (Balntas et al.,
    2016). Inputs (N, D) or (D); ``reduction='mean'`` divides by N. torch requires margin > 0.
    Convention: torch.nn.functional.triplet_margin_loss; at the kink the gradient passes
    (``clamp_min``), a tie of the swap's min splits it in half (``torch.min``), and a zero distance
    has gradient 0 (``norm``).
    Reference: PyTorch documentation, ``torch.nn.TripletMarginLoss``.
    """
    d = lambda x, y: pairwise_distance(x, y, p, eps)  # noqa: E731
    return _triplet(d(anchor, positive), d(anchor, negative), d(positive, negative), margin, swap)


#: F.cosine_similarity's default eps, the floor of each norm
COSINE_EPS = sp.Rational(1, 10**8)


def cosine_similarity(a: sp.IndexedBase, b: sp.IndexedBase, eps: sp.Expr = COSINE_EPS) -> sp.Expr:
    r"""``F.cosine_similarity(a, b, dim=-1, eps=1e-8)`` of one sample:
    :math:`\sum_k a_k b_k / (\max(\lVert a \rVert, \epsilon)\,\max(\lVert b \rVert, \epsilon))`.

    Each norm is clamped in place under ``no_grad`` (aten ``cosine_similarity``): the gradient flows
    through it as if unclamped (``spec._core.clamped``); a zero norm has gradient 0 (``root``)."""
    norm = lambda x: clamped(root(sp.Sum(x[k] ** 2, (k, 0, C - 1)), 2), eps)  # noqa: E731
    return sp.Sum(a[k] * b[k], (k, 0, C - 1)) / (norm(a) * norm(b))


@dataclass(frozen=True)
class Distance:
    """A ``distance_function`` of triplet_margin_with_distance_loss, by name: its expression for
    one pair of samples, and the torch callable it states (what a backend passes; the torch
    backend's ``function(name)``)."""

    name: str
    expr: Callable[[sp.IndexedBase, sp.IndexedBase], sp.Expr]
    torch: str  # the callable, as a user writes it
    doc: str


#: the named distances the suite checks triplet_margin_with_distance_loss with, besides its default
DISTANCES: dict[str, Distance] = {
    d.name: d
    for d in (
        Distance(
            "cosine_distance",
            lambda a, b: 1 - cosine_similarity(a, b),
            "lambda x, y: 1.0 - torch.nn.functional.cosine_similarity(x, y, dim=-1)",
            "one minus the cosine similarity (the example of torch's TripletMarginWithDistanceLoss "
            "documentation, along the last dim)",
        ),
        Distance(
            "squared_euclidean_distance",
            lambda a, b: sp.Sum((a[k] - b[k]) ** 2, (k, 0, C - 1)),
            "lambda x, y: (x - y).pow(2).sum(-1)",
            "the squared Euclidean distance (no eps, no root)",
        ),
    )
}


@loss(
    family="embedding",
    signature=("anchor", "positive", "negative", "distance_function", "margin", "swap"),
    args=_TRIPLET_ARGS,
    params=(_MARGIN, _SWAP),
    class_dim="last",
)
def triplet_margin_with_distance_loss(
    anchor: sp.IndexedBase,
    positive: sp.IndexedBase,
    negative: sp.IndexedBase,
    margin: sp.Symbol,
    swap: sp.Symbol,
) -> sp.Expr:
    r"""Triplet hinge over a given distance; by default ``pairwise_distance`` (p = 2, eps = 1e-6).

    .. math:: \ell = \max(0,\; d(a, p) - d(a, n) + \text{margin})

    With ``swap``, :math:`d(a, n)` is replaced by :math:`\min(d(a, n), d(p, n))`. Keyword-only
    options in torch; margin > 0 is required.
    Convention: torch.nn.functional.triplet_margin_with_distance_loss (pure Python: clamp_min and
    torch.minimum, as triplet_margin_loss).
    Reference: PyTorch documentation, ``torch.nn.TripletMarginWithDistanceLoss``.
    """
    d = lambda x, y: pairwise_distance(x, y, 2, sp.Rational(1, 10**6))  # noqa: E731
    return _triplet(d(anchor, positive), d(anchor, negative), d(positive, negative), margin, swap)


def _with_distance(d: Distance) -> None:
    def fn(
        anchor: sp.IndexedBase,
        positive: sp.IndexedBase,
        negative: sp.IndexedBase,
        margin: sp.Symbol,
        swap: sp.Symbol,
    ) -> sp.Expr:
        return _triplet(
            d.expr(anchor, positive), d.expr(anchor, negative), d.expr(positive, negative), margin, swap
        )

    fn.__name__ = f"triplet_margin_with_distance_loss__{d.name}"
    fn.__doc__ = (
        f"Triplet hinge over ``distance_function={d.torch}``: {d.doc}.\n\n"
        "Convention: as the default distance's (clamp_min, torch.minimum).\n"
        "Reference: PyTorch documentation, ``torch.nn.TripletMarginWithDistanceLoss``."
    )
    loss(
        family="embedding",
        signature=("anchor", "positive", "negative", "distance_function", "margin", "swap"),
        args=_TRIPLET_ARGS,
        params=(_MARGIN, _SWAP),
        class_dim="last",
        variant=d.name,
        selects={"distance_function": d.name},
    )(fn)


for _d in DISTANCES.values():
    _with_distance(_d)
