"""The most common way to write a loss module: an ``nn.Module`` with only ``forward``.

It has no ``__init__`` of its own, so its constructor takes no options (``nn.Module.__init__``
accepts none): the suite checks it with ``reduction='mean'`` and no ``weight``, and the report
header lists both as unchecked. Validate it::

    pytest conformance --impl l1_loss=examples.forward_only:L1 --loss l1_loss
"""

import torch
from torch import nn


class L1(nn.Module):
    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return (input - target).abs().mean()
