"""The seed networks as torch modules, written as the seeds write them, and their SGD training: the
torch backend's capability "training" (``conformance.backends.TrainingRun``).

Each ``Network.build`` has the seed's own module structure, so the parameters register in the order
``Network.shapes()`` lists them:

* ``seed004-layers`` (seed 004, demo1): a Module with attributes ``linear1``, ``linear2``,
  ``linear3`` and one ``activation = nn.Sigmoid()``, ``forward`` calling them in turn;
* ``seed004-sequential`` (demo2): blocks ``hidden1``, ``hidden2``, ``out``, each
  ``nn.Sequential(nn.Linear, nn.Sigmoid())``;
* ``seed000-tudui`` (seed 000): ``Tudui`` with ``self.model1 = Sequential(Conv2d, MaxPool2d, …)``;
* ``seed001`` (seed 001): a Module with ``self.linear = nn.Linear(1, 1)``.

A shared bias (``Linear(bias="shared")``) is made as seed 004 makes it: ``linear.bias.data =
torch.tensor(...)``, a 0-d parameter that broadcasts over the layer's units.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np


def _torch() -> Any:
    from conformance.backends.torch_backend import _torch as t

    return t()


def layer_module(layer: Any) -> Any:
    """The torch module for one layer record of ``oracle.networks``."""
    nn = _torch().nn
    kind = type(layer).__name__
    if kind == "Linear":
        m = nn.Linear(layer.in_features, layer.out_features)
        if layer.bias == "shared":
            m.bias.data = _torch().tensor(5.5, dtype=_torch().float32)  # as seed 004 writes it
        return m
    if kind == "Conv2d":
        return nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size, padding=layer.padding)
    if kind == "MaxPool2d":
        return nn.MaxPool2d(layer.kernel_size)
    if kind == "Sigmoid":
        return nn.Sigmoid()
    if kind == "Flatten":
        return nn.Flatten()
    raise ValueError(f"network layer: expected Linear, Conv2d, MaxPool2d, Sigmoid or Flatten, got {layer!r}")


def build(network: Any, make: Callable[[Any], Any] = layer_module) -> Any:
    """The module for ``network``, structured as its seed writes it (``network.build``); any other
    build is an ``nn.Sequential`` of its layers. ``make`` turns one layer record into a module."""
    nn = _torch().nn
    Module: Any = nn.Module
    layers = list(network.layers)
    if network.build == "seed004-layers":

        class Layers(Module):  # demo1: each Linear an attribute, one shared Sigmoid
            def __init__(self) -> None:
                super().__init__()
                self.order: list[str] = []
                for layer in layers:
                    if type(layer).__name__ == "Sigmoid":
                        self.order.append("activation")
                        if not hasattr(self, "activation"):
                            self.activation = make(layer)
                    else:
                        name = layer.name
                        setattr(self, name, make(layer))
                        self.order.append(name)

            def forward(self, x: Any) -> Any:
                for name in self.order:
                    x = getattr(self, name)(x)
                return x

        return Layers()
    if network.build == "seed004-sequential":
        blocks: list[list[Any]] = []  # demo2: each Linear with the Sigmoid after it, one nn.Sequential block
        for layer in layers:
            if type(layer).__name__ == "Sigmoid" and blocks:
                blocks[-1].append(make(layer))
            else:
                blocks.append([make(layer)])
        names = (
            ["hidden1", "hidden2", "out"] if len(blocks) == 3 else [f"block{i}" for i in range(len(blocks))]
        )

        class Blocks(Module):
            def __init__(self) -> None:
                super().__init__()
                for name, mods in zip(names, blocks, strict=True):
                    setattr(self, name, nn.Sequential(*mods))

            def forward(self, x: Any) -> Any:
                for name in names:
                    x = getattr(self, name)(x)
                return x

        return Blocks()
    if network.build == "seed000-tudui":

        class Tudui(Module):
            def __init__(self) -> None:
                super().__init__()
                self.model1 = nn.Sequential(*(make(layer) for layer in layers))

            def forward(self, x: Any) -> Any:
                return self.model1(x)

        return Tudui()
    if network.build == "seed001" and len(layers) == 1:

        class LinearRegressionModel(Module):
            def __init__(self) -> None:
                super().__init__()
                self.linear = make(layers[0])

            def forward(self, x: Any) -> Any:
                return self.linear(x)

        return LinearRegressionModel()
    return nn.Sequential(*(make(layer) for layer in layers))


def load(model: Any, network: Any, params: Mapping[str, np.ndarray[Any, Any]], dtype: Any) -> dict[str, Any]:
    """Put ``params`` into ``model`` (in ``dtype``), matched by registration order; the torch
    parameters by the network's names."""
    torch = _torch()
    model.to(dtype)
    names = list(network.shapes())
    mine = list(model.parameters())
    if len(mine) != len(names):
        raise ValueError(f"the {network.name} module has {len(mine)} parameters, the network {len(names)}")
    out = {}
    for name, p in zip(names, mine, strict=True):
        value = torch.tensor(np.asarray(params[name]), dtype=dtype)
        if tuple(p.shape) != tuple(value.shape):
            raise ValueError(
                f"{network.name} parameter {name}: the module has shape {tuple(p.shape)}, "
                f"given {tuple(value.shape)}"
            )
        with torch.no_grad():
            p.copy_(value)
        out[name] = p
    return out


@contextlib.contextmanager
def ieee_float32() -> Iterator[None]:
    """float32 convolutions and matmuls in float32 arithmetic for the duration: torch's default for
    cuDNN convolutions is TF32 (``torch.backends.cudnn.conv.fp32_precision == "tf32"`` on torch
    2.13.0), a 10-bit mantissa, which is not the float32 the checks are about. No effect on CPU."""
    torch = _torch()
    found: list[Any] = [
        getattr(torch.backends.cudnn, "conv", None),
        getattr(torch.backends.cuda, "matmul", None),
    ]
    flags: list[Any] = [f for f in found if hasattr(f, "fp32_precision")]
    saved = [f.fp32_precision for f in flags]
    try:
        for f in flags:
            f.fp32_precision = "ieee"
        yield
    finally:
        for f, old in zip(flags, saved, strict=True):
            f.fp32_precision = old


def train(
    network: Any,
    params: Mapping[str, np.ndarray[Any, Any]],
    inputs: np.ndarray[Any, Any],
    target: np.ndarray[Any, Any],
    *,
    loss: Callable[..., Any],
    dtype: str,
    lr: float,
    steps: int,
    record: int,
    device: str = "cpu",
    make: Callable[[Any], Any] = layer_module,
    optimiser: Callable[[Any, float], Any] | None = None,
) -> Any:
    """Build, load and train as the seeds do (``optimizer.zero_grad(); loss.backward();
    optimizer.step()``), returning a ``conformance.backends.TrainingRun``."""
    from conformance.backends import TrainingRun

    torch = _torch()
    tdtype = getattr(torch, dtype)
    model = build(network, make)
    named = load(model, network, params, tdtype)
    model.to(device)
    x = torch.tensor(np.asarray(inputs), dtype=tdtype, device=device)
    t = np.asarray(target)
    y = torch.tensor(t, dtype=torch.int64 if t.dtype.kind in "iu" else tdtype, device=device)
    opt = (optimiser or (lambda ps, r: torch.optim.SGD(ps, lr=r)))(list(model.parameters()), lr)
    run = TrainingRun([], [], [])  # a parameter without a gradient is left out of its record

    def host(p: Any) -> np.ndarray[Any, Any]:
        return p.detach().to("cpu", torch.float64).numpy().copy()

    with ieee_float32():
        for step in range(steps):
            _one_step(model, x, y, loss, opt, named, run, step < record, host)
    return run


def _one_step(
    model: Any, x: Any, y: Any, loss: Any, opt: Any, named: Any, run: Any, keep: bool, host: Any
) -> None:
    """One step as the seeds take it: forward, ``zero_grad``, ``backward``, ``step``."""
    out = model(x)
    value = loss(out, y)
    opt.zero_grad()
    value.backward()
    if keep:
        run.grads.append({k: host(p.grad) for k, p in named.items() if p.grad is not None})
    opt.step()
    if keep:
        run.params.append({k: host(p) for k, p in named.items()})
    run.losses.append(float(value.detach().to("cpu").double()))
