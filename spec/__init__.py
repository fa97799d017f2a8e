"""The losses, each written once as a SymPy expression: the index.

``REGISTRY`` maps each torch.nn.functional name to its :class:`~spec._core.Loss` record.
Closed forms of values and gradients are derived from these expressions by :mod:`spec.derive`.
"""

from __future__ import annotations

from spec import classification, embedding, probabilistic, ranking, regression  # noqa: F401  (registers the losses)
from spec._core import (
    CLASS_AXIS,
    FEATURE_AXIS,
    NAMED_AXES,
    REDUCTION_RULES,
    REDUCTIONS,
    REGISTRY,
    Arg,
    ArgRole,
    C,
    Convention,
    Domain,
    Loss,
    NamedAxis,
    Param,
    ReductionRule,
    Variant,
    choice,
    flag,
    i,
    j,
    k,
    l,
)
from spec.composite import COMPOSITE_LOSSES, CompositeLoss
from spec.sequence import SEQUENCE_LOSSES, SequenceLoss

#: the losses outside ``REGISTRY`` (no closed form of their own: over alignments, or a composition),
#: by torch.nn.functional name; each has its own checks in ``conformance/``
OTHER_LOSSES: dict[str, SequenceLoss | CompositeLoss] = {**SEQUENCE_LOSSES, **COMPOSITE_LOSSES}

__all__ = [
    "CLASS_AXIS",
    "FEATURE_AXIS",
    "NAMED_AXES",
    "OTHER_LOSSES",
    "REDUCTIONS",
    "REDUCTION_RULES",
    "REGISTRY",
    "Arg",
    "ArgRole",
    "C",
    "Convention",
    "Domain",
    "Loss",
    "NamedAxis",
    "Param",
    "ReductionRule",
    "Variant",
    "choice",
    "flag",
    "i",
    "j",
    "k",
    "l",
]
