"""Invalid input for every loss, derived from its spec record: the calls torch rejects.

Each :class:`BadInput` is one deterministic call that breaks one rule the spec records, made from a
small valid call of the variant (``valid_case``: input of shape (2, 3), every required tensor at a
value inside its domain, options at their defaults, reduction 'mean') by changing one thing:

* ``reduction``: an unknown name ('average'), and each name of ``spec.REDUCTION_RULES`` the
  variant does not take (``Variant.reductions``: 'batchmean' everywhere but kl_div);
* the shape of each required tensor after the first, by its role (``Arg.broadcast``): one that
  does not broadcast with input's ((2, 4)); for the roles that need input's own shape ("same",
  gaussian_nll_loss's "var") one that broadcasts but is larger ((1, 2, 3));
* the shape of each optional tensor by its role: "same" (l1/mse/huber weight) a shape other than
  input's; "input" (BCE weight) one that does not broadcast, or enlarges the result; "last_dim"
  (pos_weight) a last dim other than 1 or input's; "class" (class weights) C + 1 values;
* values outside the domain of each ``Arg(checked=True)`` (BCE's input and target: 1.5, -0.5);
* each real ``Param`` outside its domain: its open endpoint, below its lower bound, above its
  upper bound (huber's delta 0 and -1, smooth_l1's beta -1, label_smoothing 2);
* over a class axis: integer logits, a 0-d input, C + 1 class weights; class-index targets
  (``axis="index"``) >= C, negative and not ``ignore_index`` (on CUDA a device-side assertion:
  skipped there), of another shape than the batch's, or floating-point; probability targets
  (``axis="class"``) of integer dtype; and the ignore option of another variant
  (``Variant.ignore``: cross_entropy's ignore_index = 0) with targets that have no class index.

The oracle raises :class:`oracle.OracleInputError` naming the argument on every one
(``tests/test_bad_input.py``); the conformance check ``conformance.checks.rejects_bad_input``
requires the backend to raise too (any exception).

Where torch accepts a call the spec calls invalid, the suite follows torch: the class is left out
(``TORCH_ACCEPTS``, with the evidence; ``tests/test_bad_input.py`` checks that torch still accepts
each). Classes not generated at all, because torch accepts them (torch 2.13.0, CPU) and the suite
follows it:

* labels outside {-1, 1} (``SIGN``: soft_margin_loss, hinge_embedding_loss, margin_ranking_loss
  targets of 0.5 give a value), BCE-with-logits and multilabel_soft_margin_loss targets outside
  [0, 1], cross_entropy probability targets outside [0, 1] or not summing to 1, poisson_nll_loss
  negative targets (and negative rates with log_input=False: NaN), negative weights: domains
  without ``checked``;
* a broadcastable target of another shape for the "warn"/"silent" roles (torch broadcasts, with or
  without its warning), and of the same number of dims for soft_margin_loss, hinge_embedding_loss
  and margin_ranking_loss ((1, 3) against (2, 3) is accepted, though the spec's role is "same");
  a (1,) class weight for multilabel_soft_margin_loss (it broadcasts); a (1,) class-index target
  for a (C) input (the oracle accepts it too);
* NaN or infinite options (label_smoothing, margin: NaN accepted; delta, beta: inf accepted;
  torch rejects NaN delta and beta, the oracle rejects every non-finite option), and flags given a
  non-bool (kl_div raises a TypeError, the others take any truthy value);
* reduction='elementwise_mean' (deprecated: torch warns and takes it as 'mean');
* integer input to an element-wise loss: torch promotes it for l1/mse/smooth_l1_loss and
  margin_ranking_loss (and for hinge_embedding_loss with 'none'/'sum'), and raises for the others;
  the spec records nothing that tells them apart;
* uint8 class indices (torch takes Long or Byte; int32 raises, but the backend protocol makes every
  integer array an int64 tensor).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from conformance.backends import DType
from conformance.strategies import Case

if TYPE_CHECKING:  # the checks import this module at collection, which imports no SymPy
    from spec import Variant

Array = np.ndarray[Any, Any]

#: the shape of every valid call's input: a batch of 2 and 3 elements (3 classes on a class axis,
#: dim 1 or the last dim alike)
SHAPE = (2, 3)
#: a value inside each domain kind (a kind not listed gets 0.5)
_INSIDE = {"sign": 1.0, "log_probability": -0.5, "probabilities": 0.25}


@dataclass(frozen=True)
class BadInput:
    """One invalid call: ``case``, which breaks the rule ``why`` of argument (or option) ``arg``."""

    id: str  # short, unique within the variant: the test id ("target-index-too-large")
    arg: str  # the argument or option the oracle names
    why: str
    case: Case
    #: an out-of-range class index: a device-side assertion on CUDA, which leaves the device
    #: unusable for the rest of the process
    device_assert: bool = False

    def __str__(self) -> str:
        return self.id

    def __repr__(self) -> str:
        return f"<BadInput {self.case.loss}:{self.id}>"


#: (loss, class id) -> evidence: classes the spec derives that torch 2.13.0 (CPU) accepts; the
#: suite follows torch and does not require a backend to reject them
TORCH_ACCEPTS: dict[tuple[str, str], str] = {
    ("hinge_embedding_loss", "target-shape-differs"): (
        "hinge_embedding_loss(input (2, 3), target (1, 2, 3)) -> tensor(0.2500), no warning: it broadcasts"
    ),
    ("multilabel_soft_margin_loss", "target-shape-differs"): (
        "multilabel_soft_margin_loss(input (2, 3), target (1, 2, 3)) -> tensor(0.4673) (and a "
        "(2, 1) target -> tensor(0.5759)): it broadcasts"
    ),
    ("multilabel_soft_margin_loss", "target-integer"): (
        "multilabel_soft_margin_loss(input (2, 3), int64 target of ones) -> tensor(0.5759): promoted"
    ),
    ("cross_entropy", "label_smoothing-below-domain"): (
        "cross_entropy(..., label_smoothing=-1.0) -> the unsmoothed loss (tensor(1.0986) on uniform "
        "logits); torch raises only for label_smoothing > 1"
    ),
    ("poisson_nll_loss", "eps-lower-bound"): "poisson_nll_loss(..., eps=0.0) -> tensor(0.9431)",
    ("poisson_nll_loss", "eps-below-domain"): (
        "poisson_nll_loss(..., eps=-1.0) -> a value (NaN with log_input=False): eps is not checked"
    ),
    ("gaussian_nll_loss", "eps-lower-bound"): "gaussian_nll_loss(..., eps=0.0) -> tensor(0.0312)",
    ("gaussian_nll_loss", "eps-below-domain"): "gaussian_nll_loss(..., eps=-1.0) -> tensor(0.0312)",
    ("multi_margin_loss", "input-0d"): "multi_margin_loss(tensor(0.5), tensor(0)) -> tensor(0.): one class",
    ("multilabel_margin_loss", "input-0d"): "multilabel_margin_loss(tensor(0.5), tensor(0)) -> tensor(0.)",
    ("cosine_embedding_loss", "input1-integer"): (
        "cosine_embedding_loss(int64 (2, 3), float (2, 3), target) -> tensor(0.): promoted"
    ),
    ("cosine_embedding_loss", "input2-integer"): (
        "cosine_embedding_loss(float (2, 3), int64 (2, 3), target) -> tensor(0.): promoted"
    ),
    (
        "triplet_margin_loss",
        "anchor-integer",
    ): "triplet_margin_loss(int64 anchor, ...) -> tensor(1.): promoted",
    ("triplet_margin_loss", "positive-integer"): (
        "triplet_margin_loss(anchor, int64 positive, negative) -> tensor(2.2622): promoted"
    ),
    ("triplet_margin_loss", "negative-integer"): (
        "triplet_margin_loss(anchor, positive, int64 negative) -> tensor(0.0670): promoted"
    ),
    ("triplet_margin_loss", "anchor-0d"): (
        "triplet_margin_loss(tensor(.5), tensor(.5), tensor(.5)) -> tensor(1.0000): a norm of one element"
    ),
    ("triplet_margin_loss", "p-below-domain"): (
        "triplet_margin_loss(..., p=0.0) -> tensor(1.): p is not checked (p = 0 counts non-zeros)"
    ),
    ("triplet_margin_with_distance_loss", "anchor-integer"): (
        "triplet_margin_with_distance_loss(int64 anchor, ...) -> tensor(1.): promoted"
    ),
    ("triplet_margin_with_distance_loss", "positive-integer"): (
        "triplet_margin_with_distance_loss(anchor, int64 positive, negative) -> a value: promoted"
    ),
    ("triplet_margin_with_distance_loss", "negative-integer"): (
        "triplet_margin_with_distance_loss(anchor, positive, int64 negative) -> a value: promoted"
    ),
    ("triplet_margin_with_distance_loss", "anchor-0d"): (
        "triplet_margin_with_distance_loss(tensor(.5), tensor(.5), tensor(.5)) -> tensor(1.0000)"
    ),
}


def valid_case(v: Variant, dtype: DType = "float32") -> Case:
    """A small valid call of ``v``: input (2, 3), the other required tensors of its shape (class
    indices [2, 0] for a class-index target), options at their defaults, reduction 'mean'."""
    arrays: dict[str, Array] = {}
    for a in v.args:
        if a.optional:
            continue
        if v.roles[a.name].role == "index":
            arrays[a.name] = np.array([2, 0], dtype=np.int64)
        elif v.roles[a.name].role == "index_set":  # {2, 0} and {0, 1}, each ended by -1
            arrays[a.name] = np.array([[2, 0, -1], [0, 1, -1]], dtype=np.int64)
        elif v.roles[a.name].role == "element" and v.sample_axis is not None:  # one per sample
            arrays[a.name] = np.full(SHAPE[:1], _INSIDE.get(a.domain.kind, 0.5))
        else:
            arrays[a.name] = np.full(SHAPE, _INSIDE.get(a.domain.kind, 0.5))
    return Case(v.loss, v.name, dtype, arrays, dict(v.selects), "mean")


def _outside(interval: Any) -> list[tuple[str, float]]:
    """Values just outside a real interval: (which side, value)."""
    out = []
    lo, hi = float(interval.inf), float(interval.sup)
    if np.isfinite(hi):
        out.append(("above", hi + 0.5))
    if np.isfinite(lo):
        out.append(("below", lo - 0.5))
    return [(side, x) for side, x in out if not bool(interval.contains(x))]


def derived(v: Variant, dtype: DType = "float32") -> list[BadInput]:
    """Every invalid call the spec record of ``v`` implies, TORCH_ACCEPTS included."""
    from spec import REDUCTION_RULES, REGISTRY

    base = valid_case(v, dtype)
    loss = REGISTRY[v.loss]
    first = loss.tensors[0]
    out: list[BadInput] = []

    def add(
        id: str,
        arg: str,
        why: str,
        *,
        arrays: dict[str, Array] | None = None,
        options: dict[str, Any] | None = None,
        reduction: str | None = None,
        device_assert: bool = False,
    ) -> None:
        case = dataclasses.replace(
            base,
            arrays={**base.arrays, **(arrays or {})},
            options={**base.options, **(options or {})},
            reduction=reduction or base.reduction,
        )
        out.append(BadInput(id, arg, why, case, device_assert))

    add("reduction-unknown", "reduction", "reduction='average', not a reduction", reduction="average")
    for r in REDUCTION_RULES:
        if r not in v.reductions:
            add(f"reduction-{r}", "reduction", f"reduction={r!r}, which {v.loss} does not take", reduction=r)

    for a in v.args:
        if a.checked and not a.optional:
            for side, x in _outside(a.domain.interval):
                arr = base.arrays[a.name].copy()
                arr.flat[0] = x
                add(
                    f"{a.name}-{side}-domain",
                    a.name,
                    f"{a.name} {x} outside {a.domain.doc}",
                    arrays={a.name: arr},
                )

    mismatch = (*SHAPE[:-1], SHAPE[-1] + 1)  # (2, 4): does not broadcast with (2, 3)
    larger = (1, *SHAPE)  # broadcasts with (2, 3), to a larger shape
    if v.sample_axis is not None:
        c = SHAPE[-1]  # the class axis is dim 1 of (N, C) or its last dim: C = 3 either way
        ints = np.array([[0, 1, 2], [1, 0, 1]], dtype=np.int64)
        add(f"{first}-integer", first, f"integer {first}", arrays={first: ints})
        zero_d: dict[str, Array] = {first: np.array(0.5)}
        for a in v.args:
            if not a.optional and a.name != first:
                zero_d[a.name] = (
                    np.array(0)
                    if v.roles[a.name].role in ("index", "index_set")
                    else np.array(_INSIDE.get(a.domain.kind, 0.5))
                )
        add(f"{first}-0d", first, f"a 0-d {first} (no {v.sample_axis.name} axis)", arrays=zero_d)
        if v.input_ndims and 3 not in v.input_ndims:
            three = {n: np.broadcast_to(a[None], (1, *a.shape)).copy() for n, a in base.arrays.items()}
            add(f"{first}-3d", first, f"a 3-d {first} ((C) or (N, C) only)", arrays=three)
        for a in v.args:
            if a.name == first:
                continue
            if a.optional:
                if a.broadcast == "class":
                    add(f"{a.name}-size", a.name, f"{c + 1} class weights for {c} classes",
                        arrays={a.name: np.full((c + 1,), 0.5)})  # fmt: skip
                continue
            if v.roles[a.name].role == "index":
                ignore = next((p for p in v.params if p.name == v.ignore), None)
                skip = int(ignore.default) if ignore is not None else None
                neg = -1 if skip != -1 else -2
                for id_, val, why in (
                    (f"{a.name}-index-too-large", c, f"class index {c} for {c} classes"),
                    (f"{a.name}-index-negative", neg, f"class index {neg}, not ignore_index={skip}"),
                ):
                    add(id_, a.name, why, arrays={a.name: np.array([val, 0], dtype=np.int64)},
                        device_assert=True)  # fmt: skip
                add(f"{a.name}-shape", a.name, "3 class indices for a batch of 2",
                    arrays={a.name: np.array([2, 0, 1], dtype=np.int64)})  # fmt: skip
                add(f"{a.name}-float", a.name, "floating-point class indices (not of input's shape)",
                    arrays={a.name: np.array([2.0, 0.0])})  # fmt: skip
                continue
            if v.roles[a.name].role == "index_set":
                sets = base.arrays[a.name]
                for id_, val, why in (
                    (f"{a.name}-index-too-large", c, f"class index {c} for {c} classes"),
                    (f"{a.name}-index-below-minus-one", -2, "class index -2 (only -1 ends a set)"),
                ):
                    bad = sets.copy()
                    bad[0, 0] = val
                    add(id_, a.name, why, arrays={a.name: bad}, device_assert=True)
                add(f"{a.name}-float", a.name, "floating-point class indices",
                    arrays={a.name: sets.astype(np.float64)})  # fmt: skip
                add(f"{a.name}-shape-mismatch", a.name, f"{a.name} of shape {mismatch} for input {SHAPE}",
                    arrays={a.name: np.full(mismatch, -1, dtype=np.int64)})  # fmt: skip
                continue
            if v.roles[a.name].role == "element":  # one value per sample
                add(f"{a.name}-shape", a.name, f"3 values of {a.name} for a batch of 2",
                    arrays={a.name: np.full((3,), base.arrays[a.name].flat[0])})  # fmt: skip
                continue
            add(f"{a.name}-integer", a.name, f"an integer {a.name} of input's shape",
                arrays={a.name: np.ones(SHAPE, dtype=np.int64)})  # fmt: skip
            add(f"{a.name}-shape-mismatch", a.name, f"{a.name} of shape {mismatch} for input {SHAPE}",
                arrays={a.name: np.full(mismatch, base.arrays[a.name].flat[0])})  # fmt: skip
            add(f"{a.name}-shape-differs", a.name, f"{a.name} of shape {larger} for input {SHAPE}",
                arrays={a.name: np.full(larger, base.arrays[a.name].flat[0])})  # fmt: skip
        ignores = {u.ignore for u in loss.variants if u.ignore is not None}
        for name in sorted(ignores - {p.name for p in v.params}):
            add(f"{name}-without-class-indices", name, f"{name}=0 with targets that hold no class index",
                options={name: 0})  # fmt: skip
    else:
        for a in v.args:
            if a.name == first:
                continue
            inside = 0.5 if a.optional else float(base.arrays[a.name].flat[0])
            shapes: list[tuple[str, tuple[int, ...]]] = [("differs", larger)]  # (1, 2, 3)
            if a.broadcast == "last_dim":
                shapes.append(("mismatch", (SHAPE[-1] + 1,)))
            elif not (a.optional and a.broadcast == "same"):  # (an exact-shape weight: "differs")
                shapes.append(("mismatch", mismatch))
            if not a.optional and a.broadcast not in ("same", "var"):
                shapes = [("mismatch", mismatch)]  # torch broadcasts it (with or without a warning)
            for kind, shape in shapes:
                add(f"{a.name}-shape-{kind}", a.name, f"{a.name} of shape {shape} for input {SHAPE}",
                    arrays={a.name: np.full(shape, inside)})  # fmt: skip

    for p in v.params:
        if p.kind != "real":
            continue
        lo, hi = float(p.domain.inf), float(p.domain.sup)
        for id_, x in (
            ("lower-bound", lo),
            ("below-domain", lo - 1),
            ("upper-bound", hi),
            ("above-domain", hi + 1),
        ):
            if np.isfinite(x) and not p.admits(x):
                add(f"{p.name}-{id_}", p.name, f"{p.name}={x} outside {p.domain}", options={p.name: x})
    return out


def bad_inputs(v: Variant, dtype: DType = "float32") -> list[BadInput]:
    """The invalid calls of ``v`` a backend must reject: ``derived`` less ``TORCH_ACCEPTS``."""
    return [b for b in derived(v, dtype) if (v.loss, b.id) not in TORCH_ACCEPTS]
