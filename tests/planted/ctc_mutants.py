"""Wrong ctc_loss implementations, one planted bug each (the signature of
``torch.nn.functional.ctc_loss``); ``tests/test_ctc.py`` checks that ``conformance/test_ctc.py``'s
check catches each, on a case where torch conforms.

=============================  ================================================================
mutant                         planted bug
=============================  ================================================================
ctc_mean_by_total_length       'mean' is Σ loss_n / Σ target_length_n, not the batch mean of
                               loss_n / max(target_length_n, 1)
ctc_blank_fixed_at_zero        ``blank`` is ignored: class 0 is the blank
ctc_zero_infinity_ignored      ``zero_infinity`` is ignored: infeasible samples stay inf
ctc_mean_unclamped             'mean' divides by target_length_n without max(·, 1): inf or NaN
                               for an empty target
=============================  ================================================================
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def ctc_mean_by_total_length(
    log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False,
) -> Tensor:  # fmt: skip
    if reduction != "mean":
        return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    per = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, "sum", zero_infinity)
    return per / torch.as_tensor(target_lengths).sum().clamp_min(1)  # BUG


def ctc_blank_fixed_at_zero(
    log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False,
) -> Tensor:  # fmt: skip
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, 0, reduction, zero_infinity)  # BUG


def ctc_zero_infinity_ignored(
    log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False,
) -> Tensor:  # fmt: skip
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, reduction, False)  # BUG


def ctc_mean_unclamped(
    log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor, blank: int = 0,
    reduction: str = "mean", zero_infinity: bool = False,
) -> Tensor:  # fmt: skip
    if reduction != "mean":
        return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, reduction, zero_infinity)
    per = F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank, "none", zero_infinity)
    return (per / torch.as_tensor(target_lengths).to(per.dtype)).mean()  # BUG: no clamp_min(1)


MUTANTS: dict[str, Any] = {
    "ctc_mean_by_total_length": ctc_mean_by_total_length,
    "ctc_blank_fixed_at_zero": ctc_blank_fixed_at_zero,
    "ctc_zero_infinity_ignored": ctc_zero_infinity_ignored,
    "ctc_mean_unclamped": ctc_mean_unclamped,
}
