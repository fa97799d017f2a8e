"""PyTorch as a backend, on CPU or CUDA. Imports torch when first used, not when named, nor when
the suite is collected on CPU (availability, versions, losses and functions are answered without
it: importing torch takes seconds); torch-cuda imports it to ask for a device."""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from conformance.backends import DType, Layout, SecondOrderUnsupported

#: losses whose CPU kernels take float32 and float64 only (torch 2.13.0: '"multi_margin_loss_cpu_kernel"
#: not implemented for 'Half'', likewise multilabel_margin_loss and ctc_loss, and for BFloat16)
_CPU_FLOAT_DOUBLE_ONLY = frozenset({"multi_margin_loss", "multilabel_margin_loss", "ctc_loss"})
_TORCH_DTYPES = {"float64": "float64", "float32": "float32", "float16": "float16", "bfloat16": "bfloat16"}


@functools.cache
def _torch() -> Any:
    import torch

    # The suite's tensors have a few dozen elements: intra-op threads only add scheduling cost
    # (measured on 2 cores: cross_entropy forward+backward 3.1 ms with 2 threads, 0.07 ms with 1).
    torch.set_num_threads(1)
    return torch


def _chunked_linear_cross_entropy() -> Callable[..., Any] | None:
    """torch's chunked path of linear_cross_entropy (it never materialises the logits), a loss of
    its own for the suite: ``options`` is a dict of ``torch.nn.LinearCrossEntropyOptions`` fields."""
    torch = _torch()
    opts = getattr(torch.nn, "LinearCrossEntropyOptions", None)
    fn = getattr(torch.nn.functional, "linear_cross_entropy", None)
    if opts is None or fn is None:
        return None

    def chunked(*args: Any, options: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        return fn(*args, options=opts(**dict(options or {})), **kwargs)

    return chunked


def _adaptive_log_softmax_with_loss(
    input: Any, target: Any, params: Mapping[str, Any], *, n_classes: int, cutoffs: Sequence[int],
    div_value: float = 4.0, head_bias: bool = False,
) -> Any:  # fmt: skip
    """torch.nn.AdaptiveLogSoftmaxWithLoss built for these arguments and called with ``params``
    (its parameters by torch's names) in place of its own: ``(output, loss)``."""
    import warnings

    torch = _torch()
    with warnings.catch_warnings():  # a hidden size of 0: "Initializing zero-element tensors is a no-op"
        warnings.simplefilter("ignore", UserWarning)
        module = torch.nn.AdaptiveLogSoftmaxWithLoss(
            input.shape[-1], n_classes, list(cutoffs), div_value=div_value, head_bias=head_bias,
            device=input.device, dtype=input.dtype,
        )  # fmt: skip
    return torch.func.functional_call(module, dict(params), (input, target))


def _version() -> str:
    """torch's version from its distribution's metadata (importing torch only for a build that has
    none): the same string as ``torch.__version__``."""
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return str(_torch().__version__)


def _cosine_distance(x: Any, y: Any) -> Any:
    return 1.0 - _torch().nn.functional.cosine_similarity(x, y, dim=-1)


def _squared_euclidean_distance(x: Any, y: Any) -> Any:
    return (x - y).pow(2).sum(-1)


#: each exactly as its spec.embedding.DISTANCES entry's ``torch`` field (tests check it); torch is
#: imported when one is called, not when the suite asks for it at collection (``Variant.selects``)
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "cosine_distance": _cosine_distance,
    "squared_euclidean_distance": _squared_euclidean_distance,
}


class TorchBackend:
    """torch.nn.functional on one device."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.name = f"torch-{device}"

    def __repr__(self) -> str:
        return f"<backend {self.name}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def unavailable(self) -> str | None:
        if self.device == "cpu":  # installed is enough: a torch that fails to import fails each check
            return None if importlib.util.find_spec("torch") is not None else "torch is not installed"
        try:
            torch = _torch()
        except ImportError as e:
            return f"torch is not importable: {e}"
        if self.device == "cuda" and not torch.cuda.is_available():
            return (
                f"torch {torch.__version__} reports no CUDA device (torch.cuda.is_available() is False"
                f"{'; this torch build has no CUDA support' if torch.version.cuda is None else ''})"
            )
        return None

    def describe(self) -> Mapping[str, str]:
        dev = _torch().cuda.get_device_name(0) if self.device == "cuda" else "cpu"
        return {"device": dev, "torch": _version()}

    def dtypes(self, loss: str) -> Sequence[DType]:
        if self.device == "cpu" and loss in _CPU_FLOAT_DOUBLE_ONLY:
            return ("float64", "float32")
        return ("float64", "float32", "float16", "bfloat16")

    def provides(self, name: str) -> bool:
        """Whether ``loss(name)`` is a callable (``conformance.backends.provides``), without importing
        torch while it is not yet imported: torch has every loss the spec names (the spec is written
        from torch.nn.functional); an older torch that lacks one skips its checks when they run."""
        return "torch" not in sys.modules or self.loss(name) is not None

    def loss(self, name: str) -> Callable[..., Any] | None:
        if name == "linear_cross_entropy[chunked]":
            return _chunked_linear_cross_entropy()
        if name == "AdaptiveLogSoftmaxWithLoss":
            return _adaptive_log_softmax_with_loss
        return getattr(_torch().nn.functional, name, None)

    def function(self, name: str) -> Callable[..., Any] | None:
        """The torch callable for a function the spec names (``spec.embedding.DISTANCES``: the
        ``distance_function`` of triplet_margin_with_distance_loss), written as its ``torch`` field
        says; None for a name it does not know."""
        return _FUNCTIONS.get(name)

    def train(
        self,
        network: Any,
        params: Mapping[str, np.ndarray[Any, Any]],
        inputs: np.ndarray[Any, Any],
        target: np.ndarray[Any, Any],
        *,
        loss: Callable[..., Any],
        dtype: DType,
        lr: float,
        steps: int,
        record: int,
    ) -> Any:
        """Capability "training": the seed network built as its seed writes it, trained with
        ``torch.optim.SGD`` (``conformance.backends.torch_networks``)."""
        from conformance.backends import torch_networks

        return torch_networks.train(
            network, params, inputs, target, loss=loss, dtype=dtype, lr=lr, steps=steps, record=record,
            device=self.device,
        )  # fmt: skip

    def tensor(
        self,
        array: np.ndarray[Any, Any],
        dtype: DType,
        *,
        requires_grad: bool = False,
        layout: Layout = "contiguous",
    ) -> Any:
        torch = _torch()
        a = np.asarray(array)
        tdtype = torch.int64 if a.dtype.kind in "iu" else getattr(torch, _TORCH_DTYPES[dtype])
        make = functools.partial(torch.tensor, dtype=tdtype, device=self.device)
        if layout == "contiguous" or a.ndim == 0:
            t = make(a)
        elif layout == "non_contiguous":  # every other element of a (…, 2) buffer
            t = make(np.stack([a, np.zeros_like(a)], axis=-1))[..., 0]
        elif layout == "sliced":  # a view with a storage offset, inside a larger buffer
            t = make(np.concatenate([np.zeros_like(a[:1]), a], axis=0))[1:]
        elif layout == "expanded":  # stride 0 along dim 0: the caller made every row equal
            if a.shape[0] and not (a == a[:1]).all():
                raise ValueError("an expanded layout needs equal rows along dim 0")
            t = make(a[:1]).expand(a.shape)
        elif layout == "channels_last":
            t = make(a)
            if a.ndim == 4:
                t = t.contiguous(memory_format=torch.channels_last)
        else:
            raise ValueError(
                "layout: expected one of contiguous, non_contiguous, sliced, expanded, channels_last, "
                f"got {layout!r}"
            )
        if requires_grad:
            if t.is_leaf:
                t.requires_grad_(True)
            else:  # a view: make its base a leaf that requires grad and rebuild the view from it
                base = t._base.detach().requires_grad_(True)
                t = torch.as_strided(base, t.shape, t.stride(), t.storage_offset())
        return t

    def to_numpy(self, tensor: Any) -> np.ndarray[Any, Any]:
        torch = _torch()
        t = tensor.detach().cpu()
        if t.is_floating_point():
            t = t.to(torch.float64)
        return t.numpy().copy()

    def grad(
        self, output: Any, inputs: Sequence[Any], upstream: np.ndarray[Any, Any]
    ) -> list[np.ndarray[Any, Any] | None]:
        torch = _torch()
        if not output.requires_grad:  # nothing asked for is connected to the output: no gradients
            return [None for _ in inputs]
        u = torch.tensor(np.asarray(upstream), dtype=output.dtype, device=output.device)
        gs = torch.autograd.grad(output, list(inputs), grad_outputs=u, allow_unused=True)
        return [None if g is None else self.to_numpy(g) for g in gs]

    def grad_grad(
        self,
        output: Any,
        inputs: Sequence[Any],
        upstream: np.ndarray[Any, Any],
        directions: Sequence[np.ndarray[Any, Any]],
    ) -> list[np.ndarray[Any, Any]]:
        """Second order: the gradient w.r.t. each input of ⟨∇(output)·upstream, directions⟩
        (double backward). A backward that is not itself differentiable raises
        ``SecondOrderUnsupported`` saying so."""
        torch = _torch()
        u = torch.tensor(np.asarray(upstream), dtype=output.dtype, device=output.device)
        gs = torch.autograd.grad(output, list(inputs), grad_outputs=u, create_graph=True, allow_unused=True)
        dot = None
        for g, d, x in zip(gs, directions, inputs, strict=True):
            if g is None:
                continue
            term = (g * torch.tensor(np.asarray(d), dtype=x.dtype, device=x.device)).sum()
            dot = term if dot is None else dot + term
        if dot is None or not dot.requires_grad:
            raise SecondOrderUnsupported(
                "its backward is not differentiable: the gradients it returned do not require grad "
                "(computed under no_grad, from detached tensors, or by a backward that is not itself "
                "differentiable)"
            )
        hs = torch.autograd.grad(dot, list(inputs), allow_unused=True)
        return [
            np.zeros(tuple(x.shape)) if h is None or h._is_zerotensor() else self.to_numpy(h)
            for h, x in zip(hs, inputs, strict=True)
        ]


cpu = TorchBackend("cpu")
cuda = TorchBackend("cuda")
