"""Planted backprop bugs in training: torch-cpu backends whose seed networks train wrongly, each in
one way (``tests/test_training.py`` checks that the training checks catch every one).

Each is a ``TorchBackend`` whose capability "training" builds the seed network with one layer made
wrong (``make``), or steps with a wrong optimiser; its ``name`` is its ``module:attribute``, so a
reported ``replay(...)`` resolves it. The loss-gradient bug is an --impl of the loss instead
(``tests.planted.mutants:mse_grad_no_factor_two``, ``ce_grad_doubled`` here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from conformance.backends import torch_networks
from conformance.backends.torch_backend import TorchBackend


class _Mutant(TorchBackend):
    def __init__(
        self,
        attr: str,
        make: Callable[[Any], Any] = torch_networks.layer_module,
        optimiser: Callable[[Any, float], Any] | None = None,
    ) -> None:
        super().__init__("cpu")
        self.name = f"{__name__}:{attr}"
        self._make, self._optimiser = make, optimiser

    def train(
        self,
        network: Any,
        params: Mapping[str, np.ndarray[Any, Any]],
        inputs: np.ndarray[Any, Any],
        target: np.ndarray[Any, Any],
        **kw: Any,
    ) -> Any:
        return torch_networks.train(
            network, params, inputs, target, **kw, make=self._make, optimiser=self._optimiser
        )


# -- a max-pool that routes each window's gradient to its top-left entry, not to its maximum ---------


class _PoolTopLeft(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, k: int) -> Tensor:
        ctx.k, ctx.shape = k, x.shape
        return F.max_pool2d(x, k)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        k = ctx.k
        out = g.new_zeros(ctx.shape)
        out[..., ::k, ::k] = g
        return out, None


class _MaxPoolTopLeft(nn.Module):
    def __init__(self, k: int) -> None:
        super().__init__()
        self.k = k

    def forward(self, x: Tensor) -> Tensor:
        return _PoolTopLeft.apply(x, self.k)  # type: ignore[no-any-return]


def _pool_top_left(layer: Any) -> Any:
    if type(layer).__name__ == "MaxPool2d":
        return _MaxPoolTopLeft(layer.kernel_size)
    return torch_networks.layer_module(layer)


# -- a conv with its kernel flipped (a true convolution, where torch's Conv2d correlates) ------------


class _FlippedConv(nn.Conv2d):
    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight.flip(-1, -2), self.bias, padding=self.padding)


def _flipped_conv(layer: Any) -> Any:
    if type(layer).__name__ == "Conv2d":
        return _FlippedConv(layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.padding)
    return torch_networks.layer_module(layer)


# -- a shared 0-d bias whose gradient is its first unit's only (not summed over the units) ----------


class _FirstUnitBias(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, y: Tensor, b: Tensor) -> Tensor:
        return y + b

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        return g, g[:, 0].sum()


class _SharedBiasLinear(nn.Linear):
    def forward(self, x: Tensor) -> Tensor:
        if self.bias.dim() == 0:
            return _FirstUnitBias.apply(F.linear(x, self.weight), self.bias)  # type: ignore[no-any-return]
        return super().forward(x)


def _bias_first_unit(layer: Any) -> Any:
    if type(layer).__name__ == "Linear":
        m = _SharedBiasLinear(layer.in_features, layer.out_features)
        if layer.bias == "shared":
            m.bias.data = torch.tensor(5.5, dtype=torch.float32)
        return m
    return torch_networks.layer_module(layer)


# -- SGD stepping uphill --------------------------------------------------------------------------


class _SGDUphill(torch.optim.SGD):
    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(p.grad, alpha=group["lr"])
        return None


maxpool_top_left = _Mutant("maxpool_top_left", make=_pool_top_left)
conv_flipped_kernel = _Mutant("conv_flipped_kernel", make=_flipped_conv)
shared_bias_first_unit = _Mutant("shared_bias_first_unit", make=_bias_first_unit)
sgd_wrong_sign = _Mutant("sgd_wrong_sign", optimiser=lambda ps, lr: _SGDUphill(ps, lr=lr))


class _CEGradDoubled(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, t: Tensor) -> Tensor:
        ctx.save_for_backward(x, t)
        return F.cross_entropy(x, t)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Any:
        x, t = ctx.saved_tensors
        p = torch.softmax(x, dim=1)
        p[torch.arange(len(t)), t] -= 1
        return 2 * g * p / len(t), None


def ce_grad_doubled(input: Tensor, target: Tensor, **kwargs: Any) -> Tensor:
    """cross_entropy (class indices, mean) whose gradient is twice the true one."""
    return _CEGradDoubled.apply(input, target)  # type: ignore[no-any-return]
