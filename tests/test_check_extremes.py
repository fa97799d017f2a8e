"""Checks at the extremes of float64: the suite's own arithmetic (error scales, sums of them) must
not turn a correct backend's answer into a failure."""

from __future__ import annotations

import numpy as np

from conformance import checks
from conformance.backends import resolve
from conformance.strategies import Case


def test_reductions_agree_where_the_error_scale_overflows() -> None:
    """Found by a default-profile run: gaussian_nll_loss with var = 3.4e-307 gives losses of
    1.3e307 whose error scales, summed for 'sum', overflow float64: the check raised NumPy's
    overflow warning on torch-cpu, a false alarm. An infinite scale is no bound there."""
    for shape in ((1, 1, 3), (1, 1, 1)):
        case = Case(
            "gaussian_nll_loss",
            "default",
            "float64",
            {
                "input": np.zeros(shape),
                "target": np.full(shape, 3.0),
                "var": np.full(shape[:-1] + ((1,) if shape[-1] == 1 else ()), 3.37674047e-307),
            },
            {"full": False, "eps": 5e-324},
            "none",
        )
        checks.reductions_agree(resolve("torch-cpu"), case)
