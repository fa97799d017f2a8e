"""A float64 NumPy oracle for the losses of ``spec``: values and gradients from SymPy-derived,
stably rewritten closed forms. See :func:`oracle.evaluate`.

The names below are imported from ``oracle.api`` on first use (PEP 562), so that importing a
NumPy-only module of the package (``oracle.networks``, ``oracle.ctc``) does not import SymPy and
the compiler: collecting the conformance suite imports those and must stay fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from oracle.api import (
        Evaluation,
        OracleInputError,
        OracleRangeError,
        evaluate,
        hvp,
        loss_value,
        select_variant,
    )

__all__ = [
    "Evaluation",
    "OracleInputError",
    "OracleRangeError",
    "evaluate",
    "hvp",
    "hvp_contributions",
    "loss_value",
    "output_shape",
    "select_variant",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from oracle import api

        return getattr(api, name)
    raise AttributeError(f"module 'oracle' has no attribute {name!r}")
