"""A backend with some of its losses replaced by other callables (the basis of ``--impl``).

The replacement has the torch.nn.functional signature of its loss and receives the base backend's
tensors; every other loss, and all tensor handling, still comes from the base backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from conformance.backends import Backend, DType, Layout


class OverrideBackend:
    def __init__(
        self,
        base: Backend,
        overrides: Mapping[str, Callable[..., Any]],
        impls: Mapping[str, Any] | None = None,
    ) -> None:
        self.base = base
        self.overrides = dict(overrides)
        self.impls = dict(impls or {})  # loss -> conformance.impl.Impl, when loaded by --impl
        self.name = base.name + "".join(
            f"+{k}={getattr(v, '__qualname__', v)}" for k, v in self.overrides.items()
        )

    def __getattr__(self, name: str) -> Any:
        """A capability's methods (``conformance.backends.CAPABILITIES``) come from the base backend."""
        from conformance.backends import CAPABILITIES

        if any(name in c.methods for c in CAPABILITIES.values()) and "base" in self.__dict__:
            return getattr(self.base, name)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"<backend {self.name}>"

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(repr(self))

    def unavailable(self) -> str | None:
        return self.base.unavailable()

    def describe(self) -> Mapping[str, str]:
        return {
            **self.base.describe(),
            **{f"impl {k}": getattr(v, "__module__", "?") for k, v in self.overrides.items()},
        }

    def dtypes(self, loss: str) -> Sequence[DType]:
        return self.base.dtypes(loss)

    def provides(self, name: str) -> bool:
        """A replaced loss is there; any other as the base backend answers (``backends.provides``)."""
        from conformance.backends import provides

        return name in self.overrides or provides(self.base, name)

    def loss(self, name: str) -> Callable[..., Any] | None:
        # an override of a loss replaces each of its paths too (``linear_cross_entropy[chunked]``:
        # the same function, called with ``options``), not the base backend's own
        own = self.overrides.get(name) or self.overrides.get(name.partition("[")[0])
        return own or self.base.loss(name)

    def tensor(
        self,
        array: np.ndarray[Any, Any],
        dtype: DType,
        *,
        requires_grad: bool = False,
        layout: Layout = "contiguous",
    ) -> Any:
        return self.base.tensor(array, dtype, requires_grad=requires_grad, layout=layout)

    def to_numpy(self, tensor: Any) -> np.ndarray[Any, Any]:
        return self.base.to_numpy(tensor)

    def grad(
        self, output: Any, inputs: Sequence[Any], upstream: np.ndarray[Any, Any]
    ) -> list[np.ndarray[Any, Any] | None]:
        return self.base.grad(output, inputs, upstream)
