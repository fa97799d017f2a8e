"""The seed tutorial's ``Custom_MSE`` (shared/seeds/002): an ``nn.Module`` with no ``reduction``.

Validate it as ``mse_loss``::

    pytest conformance --impl mse_loss=examples.custom_mse:Custom_MSE --loss mse_loss

It is checked with ``reduction='mean'`` and no ``weight`` (the options it does not take); the
report header says so.
"""

import torch
from torch import nn


class Custom_MSE(nn.Module):
    def __init__(self):
        super(Custom_MSE, self).__init__()  # noqa: UP008

    def forward(self, predictions, target):
        square_difference = torch.square(predictions - target)
        loss_value = torch.mean(square_difference)
        return loss_value
