"""A float64 NumPy oracle for the losses of ``spec``: values and gradients from SymPy-derived,
stably rewritten closed forms. See :func:`oracle.evaluate`."""

from __future__ import annotations

from oracle.api import Evaluation, OracleInputError, evaluate, hvp, loss_value, select_variant

__all__ = ["Evaluation", "OracleInputError", "evaluate", "hvp", "loss_value", "select_variant"]
