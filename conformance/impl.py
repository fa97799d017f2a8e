"""``--impl NAME=package.module:attribute``: check one loss implementation without writing a backend.

The attribute is either a callable with the torch.nn.functional signature of loss NAME, or an
``nn.Module`` subclass, built with the loss's options as constructor keyword arguments and called
with its tensor arguments positionally (``module(input, target)``). Options the implementation does
not accept are not varied: the suite checks it with their defaults only, and says so.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance.backends import BackendError, load_object

#: the tensor arguments passed positionally, per loss, in torch.nn.functional order
_POSITIONAL = {
    "margin_ranking_loss": 3,
    "cosine_embedding_loss": 3,
    "triplet_margin_loss": 3,
    "triplet_margin_with_distance_loss": 3,
    "ctc_loss": 4,
    "gaussian_nll_loss": 3,
}


@dataclass
class Impl:
    """A loaded implementation: ``fn(*tensors, **options)`` with torch.nn.functional conventions."""

    loss: str
    ref: str
    fn: Callable[..., Any]
    unchecked: dict[str, str] = field(default_factory=dict)  # option -> why it is not varied

    def supports(self, option: str) -> bool:
        return option not in self.unchecked


def _options(loss: str) -> dict[str, Any]:
    """Every option of ``loss`` with its torch default (from the spec, plus ``reduction``)."""
    from spec import REGISTRY

    spec_loss = REGISTRY[loss]
    out: dict[str, Any] = {"reduction": "mean"}
    for v in spec_loss.variants:
        for a in v.args:
            if a.optional:
                out[a.name] = None
        for p in v.params:
            out[p.name] = p.default
    return out


def load(spec_: str, invocation_dir: Path) -> Impl:
    """Parse and import one ``NAME=package.module:attribute``; a BackendError says what is wrong."""
    from spec import REGISTRY

    name, sep, ref = spec_.partition("=")
    if not sep or not ref:
        raise BackendError(f"--impl {spec_!r}: expected NAME=package.module:attribute")
    if name not in REGISTRY:
        raise BackendError(f"--impl {spec_!r}: unknown loss {name!r}; expected one of {sorted(REGISTRY)}")
    here = str(invocation_dir)
    if sys.path[:1] != [here]:
        sys.path.insert(0, here)  # a user's own file works without installing it
    obj: Any = load_object(ref)
    options = _options(name)
    n_tensors = _POSITIONAL.get(name, 2)
    if inspect.isclass(obj) and _is_module(obj):
        init = inspect.signature(obj.__init__).parameters
        takes_any = any(p.kind is p.VAR_KEYWORD for p in init.values())
        unchecked = {
            o: f"not a parameter of {obj.__qualname__}.__init__"
            for o in options
            if o not in init and not takes_any
        }

        def call_module(*args: Any, **kwargs: Any) -> Any:
            tensors = args[:n_tensors]
            ctor = {k: v for k, v in kwargs.items() if k not in unchecked}
            module: Any = obj(**ctor)
            return module(*tensors)

        call_module.__qualname__ = obj.__qualname__
        call_module.__module__ = obj.__module__
        return Impl(name, ref, call_module, unchecked)
    if not callable(obj):
        raise BackendError(
            f"--impl {spec_!r}: {ref} is a {type(obj).__name__}, neither callable nor an nn.Module subclass"
        )
    try:
        params: Mapping[str, inspect.Parameter] = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        params = {}
    takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
    unchecked = {
        o: f"not a parameter of {getattr(obj, '__qualname__', ref)}"
        for o in options
        if params and o not in params and not takes_all
    }

    def call_fn(*args: Any, **kwargs: Any) -> Any:
        return obj(*args, **{k: v for k, v in kwargs.items() if k not in unchecked})

    call_fn.__qualname__ = getattr(obj, "__qualname__", ref)
    call_fn.__module__ = getattr(obj, "__module__", "?")
    return Impl(name, ref, call_fn, unchecked)


def _is_module(cls: type) -> bool:
    return any(f"{c.__module__}.{c.__qualname__}" == "torch.nn.modules.module.Module" for c in cls.__mro__)


def describe(impls: Mapping[str, Impl]) -> list[str]:
    lines = []
    for i in impls.values():
        what = "; ".join(f"{o} ({why})" for o, why in i.unchecked.items()) or "none"
        lines.append(
            f"conformance: --impl {i.loss}={i.ref}; options left at their defaults (unchecked): {what}"
        )
    return lines
