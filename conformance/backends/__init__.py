"""Backends: what the conformance suite runs losses on, and how one is found by name.

A backend converts NumPy arrays to its own tensors, calls a loss with the torch.nn.functional
signature, and returns values and gradients as NumPy arrays. The suite never imports a backend's
library itself: ``BACKENDS`` maps names to ``"module:attribute"`` strings, and third-party backends
register under the entry-point group ``ENTRY_POINT_GROUP``, so naming a backend imports nothing else.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

DType = Literal["float64", "float32", "float16", "bfloat16"]
Layout = Literal["contiguous", "non_contiguous", "sliced", "expanded", "channels_last"]
DTYPES: tuple[DType, ...] = ("float64", "float32", "float16", "bfloat16")
LAYOUTS: tuple[Layout, ...] = ("contiguous", "non_contiguous", "sliced", "expanded", "channels_last")

BACKENDS: dict[str, str] = {
    "torch-cpu": "conformance.backends.torch_backend:cpu",
    "torch-cuda": "conformance.backends.torch_backend:cuda",
}
ENTRY_POINT_GROUP = "loss_conformance.backends"


@runtime_checkable
class Backend(Protocol):
    """What a backend provides. Tensors are opaque to the suite (``Any``).

    * ``unavailable()``: why this backend cannot run here (no CUDA, library missing), or None.
    * ``describe()``: name → value lines for the report header (device, library versions).
    * ``dtypes(loss)``: the dtypes this backend supports for ``loss``.
    * ``loss(name)``: the callable for a torch.nn.functional loss name, or None if the backend
      lacks it (its tests are skipped with that reason).
    * ``tensor(array, dtype, requires_grad, layout)``: a tensor holding exactly ``array``'s values
      (already representable in ``dtype``) in the given memory layout. Integer arrays are class
      indices and keep an integer dtype.
    * ``to_numpy(t)``: the values of a tensor as a float64 (or integer) NumPy array.
    * ``grad(output, inputs, upstream)``: gradients of ``output`` w.r.t. each of ``inputs``, with
      ``upstream`` (shaped like ``output``) flowing in; None for an input that got no gradient.

    This protocol does not grow: what only some backends can do (second-order gradients, training
    the seed networks) is a **capability** (``CAPABILITIES``), declared apart from it, found by the
    methods a backend has; a check that needs one a backend lacks is skipped with that reason, and
    every existing backend keeps working.

    Collecting the suite asks ``dtypes`` and whether each loss is provided (``provides`` below), so
    these should not import the backend's library: collection stays fast (and, with
    ``--collect-only``, runs nothing).
    """

    name: str

    def unavailable(self) -> str | None: ...

    def describe(self) -> Mapping[str, str]: ...

    def dtypes(self, loss: str) -> Sequence[DType]: ...

    def loss(self, name: str) -> Callable[..., Any] | None: ...

    def tensor(
        self,
        array: np.ndarray[Any, Any],
        dtype: DType,
        *,
        requires_grad: bool = False,
        layout: Layout = "contiguous",
    ) -> Any: ...

    def to_numpy(self, tensor: Any) -> np.ndarray[Any, Any]: ...

    def grad(
        self, output: Any, inputs: Sequence[Any], upstream: np.ndarray[Any, Any]
    ) -> list[np.ndarray[Any, Any] | None]: ...


@dataclass(frozen=True)
class Capability:
    """An optional ability of a backend beyond the base protocol: the methods that make it up.
    A backend has it when it has every one of them (wrappers such as ``OverrideBackend`` forward
    them to the backend they wrap)."""

    name: str
    methods: tuple[str, ...]
    doc: str


#: the optional capabilities, by name; the issues that need them add their methods' contracts
CAPABILITIES: dict[str, Capability] = {
    c.name: c
    for c in (
        Capability(
            "second_order",
            ("grad_grad",),
            "gradients of gradients (double backward): grad_grad(output, inputs, upstream, directions)",
        ),
        Capability(
            "functions",
            ("function",),
            "its own form of a function the spec names, for a function option "
            "(distance_function='cosine_distance'): function(name) -> a callable, or None",
        ),
        Capability(
            "training",
            ("train",),
            "training the seed documents' networks: train(network, params, inputs, target, *, loss, "
            "dtype, lr, steps, record) -> TrainingRun",
        ),
    )
}


@dataclass
class TrainingRun:
    """What capability "training" returns: ``train(network, params, inputs, target, *, loss, dtype,
    lr, steps, record)`` builds ``network`` (an ``oracle.networks.Network``: its layers, and
    ``build``, how the seed writes the module) in ``dtype`` with ``params`` (NumPy arrays by the
    network's parameter names, in the order its module registers them), and runs ``steps``
    full-batch steps of plain SGD at ``lr`` (p ← p − lr·∇p) on ``inputs`` and ``target``, the loss
    being ``loss(output, target)`` (the backend's own loss for the network, or an --impl's).

    * ``losses[t]``: the loss at step t, before its update;
    * ``grads[t]``: each parameter's gradient at step t, for the first ``record`` steps;
    * ``params[t]``: the parameters after step t's update, for the first ``record`` steps.
    """

    losses: list[float]
    grads: list[dict[str, np.ndarray[Any, Any]]]
    params: list[dict[str, np.ndarray[Any, Any]]]


def missing_capability(backend: Any, name: str) -> str | None:
    """Why ``backend`` lacks capability ``name`` (the methods it does not have), or None."""
    cap = CAPABILITIES[name]
    lacks = [m for m in cap.methods if not callable(getattr(backend, m, None))]
    if not lacks:
        return None
    who = getattr(backend, "name", backend)
    return f"backend {who!r} has no {name} capability ({cap.doc}): it lacks {lacks}"


def provides(backend: Any, loss: str) -> bool:
    """Whether ``backend`` has ``loss``, as collecting the suite asks it: by the backend's own
    ``provides(name)`` where it has one, an answer that need not import its library (torch's takes
    seconds to import), else by ``loss(name)``. A check whose loss ``provides`` said is there is
    skipped when it runs if ``loss(name)`` is None after all (``conformance/conftest.py``)."""
    hint = getattr(backend, "provides", None)
    return bool(hint(loss)) if callable(hint) else backend.loss(loss) is not None


class SecondOrderUnsupported(RuntimeError):
    """Raised by ``grad_grad`` where the gradients are not connected to the inputs: a backward
    that is not itself differentiable (or gradients constant in the inputs)."""


class BackendError(LookupError):
    """A backend name that cannot be resolved: says what was wrong and what the choices are."""


def entry_point_backends() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_names() -> list[str]:
    return sorted({*BACKENDS, *entry_point_backends()})


def load_object(ref: str) -> Any:
    """Import ``"package.module:attribute"``."""
    module, _, attr = ref.partition(":")
    if not module or not attr:
        raise BackendError(f"expected 'package.module:attribute', got {ref!r}")
    try:
        obj: Any = importlib.import_module(module)
    except ImportError as e:
        raise BackendError(f"cannot import {module!r} (from {ref!r}): {e}") from e
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise BackendError(f"module {module!r} has no attribute {attr!r}") from None
    return obj


def resolve(name: str) -> Backend:
    """A backend by registered name, entry-point name, or ``module:attribute`` (an instance or a
    zero-argument callable returning one)."""
    table = {**entry_point_backends(), **BACKENDS}
    if name in table:
        ref = table[name]
    elif ":" in name:
        ref = name
    else:
        raise BackendError(
            f"--backend={name!r}: unknown backend; expected one of {available_names()} "
            "or 'package.module:attribute'"
        )
    obj = load_object(ref)
    if not isinstance(obj, Backend) and callable(obj):
        obj = obj()
    if not isinstance(obj, Backend):
        raise BackendError(f"--backend={name!r}: {ref} is not a Backend (see conformance.backends.Backend)")
    return obj
