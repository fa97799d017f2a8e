"""Connectionist temporal classification (CTC): a loss defined as a sum over alignments.

CTC has no closed form: its per-sample loss is ``-log`` of a sum, over every *alignment* π (one
class per time step, blank included) that collapses to the target, of the alignment's probability.
That definition is written here once, exactly, as plain Python over a finite set:

* :func:`collapse` is the many-to-one map B of Graves et al. (2006): merge repeated classes, then
  drop blanks;
* :func:`alignments` enumerates B⁻¹(target) among the sequences of a given length;
* :func:`path_log_prob` is log Π_t p_t(π_t) = Σ_t log_probs[t, π_t];
* ``loss_n = -log Σ_{π ∈ B⁻¹(target_n), |π| = input_length_n} exp(path_log_prob(π))``.

The oracle (``oracle.ctc``) evaluates the same quantity with the forward–backward recursion in log
space; ``tests/test_ctc.py`` proves the two agree (mpmath enumeration at tiny lengths).

PyTorch's contract around the definition, recorded as data (:data:`CTC`):

* reduction 'mean' is the batch mean of ``loss_n / max(target_length_n, 1)`` (not Σ loss / Σ
  lengths), 'sum' is Σ loss_n, 'none' the (N) losses (a 0-d loss for unbatched (T, C) input);
* the gradient torch returns w.r.t. ``log_probs`` is NOT ∂loss/∂log_probs: it is
  ``exp(log_probs) + ∂loss/∂log_probs`` at t < input_length_n (the gradient w.r.t. the logits z
  when ``log_probs = log_softmax(z)``, eq. 16 of Graves et al.), and 0 at t >= input_length_n
  (aten ``ctc_loss_backward_cpu``; pytorch issue #52241);
* ``zero_infinity=True``: an infinite loss (no alignment: e.g. a target too long for its input) and
  its gradient are replaced by 0; without it the loss is inf and the gradient NaN;
* ``input_length_n = 0``: the loss is 0 if ``target_length_n = 0`` (the empty alignment), else inf.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass


def collapse(path: Sequence[int], blank: int) -> tuple[int, ...]:
    """B(π): merge runs of equal classes, then remove blanks (Graves et al. 2006, §3.1)."""
    out: list[int] = []
    prev = None
    for c in path:
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return tuple(out)


def alignments(length: int, target: Sequence[int], classes: int, blank: int) -> Iterator[tuple[int, ...]]:
    """Every π of ``length`` classes in [0, classes) with B(π) = target: B⁻¹(target), by
    enumeration (classes^length sequences: for tiny lengths, the ground truth)."""
    want = tuple(target)
    for path in itertools.product(range(classes), repeat=length):
        if collapse(path, blank) == want:
            yield path


def path_log_prob(log_probs: Sequence[Sequence[float]], path: Sequence[int]) -> list[float]:
    """The terms of log Π_t p_t(π_t) = Σ_t log_probs[t][π_t] (returned as the terms, to be summed
    exactly by the caller)."""
    return [log_probs[t][c] for t, c in enumerate(path)]


@dataclass(frozen=True)
class SequenceLoss:
    """A loss over alignments: its torch.nn.functional name and signature, its options and
    their defaults, and the conventions listed in the module's documentation."""

    name: str
    signature: tuple[str, ...]
    tensors: tuple[str, ...]  # passed positionally
    defaults: dict[str, object]
    doc: str


CTC = SequenceLoss(
    name="ctc_loss",
    signature=(
        "log_probs",
        "targets",
        "input_lengths",
        "target_lengths",
        "blank",
        "reduction",
        "zero_infinity",
    ),
    tensors=("log_probs", "targets", "input_lengths", "target_lengths"),
    defaults={"blank": 0, "reduction": "mean", "zero_infinity": False},
    doc=__doc__ or "",
)

#: the losses defined over alignments, by torch.nn.functional name (not closed forms: they are not
#: in ``spec.REGISTRY``; ``conformance/test_ctc.py`` checks them)
SEQUENCE_LOSSES: dict[str, SequenceLoss] = {CTC.name: CTC}
