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
    from spec import OTHER_LOSSES, REGISTRY

    if loss in OTHER_LOSSES:
        return {"reduction": "mean", **OTHER_LOSSES[loss].defaults}
    spec_loss = REGISTRY[loss]
    out: dict[str, Any] = {"reduction": "mean"}
    for v in spec_loss.variants:
        for a in v.args:
            if a.optional:
                out[a.name] = None
        for p in v.params:
            out[p.name] = p.default
        for o in v.selects:  # a function option (distance_function): None selects the default
            out[o] = None
    return out


def load(spec_: str, invocation_dir: Path) -> Impl:
    """Parse and import one ``NAME=package.module:attribute``; a BackendError says what is wrong."""
    from spec import OTHER_LOSSES, REGISTRY

    name, sep, ref = spec_.partition("=")
    if not sep or not ref:
        raise BackendError(f"--impl {spec_!r}: expected NAME=package.module:attribute")
    from spec.composite import MODULES

    if name in MODULES:
        raise BackendError(
            f"--impl {spec_!r}: {name} is a module with parameters; --impl does not take it yet"
        )
    if name not in REGISTRY and name not in OTHER_LOSSES:
        known = sorted({*REGISTRY, *OTHER_LOSSES})
        raise BackendError(f"--impl {spec_!r}: unknown loss {name!r}; expected one of {known}")
    here = str(invocation_dir)
    if sys.path[:1] != [here]:
        sys.path.insert(0, here)  # a user's own file works without installing it
    try:
        obj: Any = load_object(ref)
    except BackendError as e:
        raise BackendError(f"--impl {spec_!r}: {e}") from None
    options = _options(name)
    # passed positionally, in torch.nn.functional order
    n_tensors = len(OTHER_LOSSES[name].tensors if name in OTHER_LOSSES else REGISTRY[name].tensors)
    if inspect.isclass(obj) and _is_module(obj):
        accepted, whose = module_options(obj)
        unchecked = {o: why for o in options if (why := _not_taken(o, accepted, whose)) is not None}

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


_MODULE = "torch.nn.modules.module.Module"


def _is_module(cls: type) -> bool:
    return any(f"{c.__module__}.{c.__qualname__}" == _MODULE for c in cls.__mro__)


def module_options(cls: type) -> tuple[frozenset[str], str]:
    """The keyword arguments an ``nn.Module`` subclass's constructor really takes, and whose
    ``__init__`` says so.

    Only the classes above ``nn.Module`` in the MRO count: ``nn.Module.__init__(*args, **kwargs)``
    accepts nothing (it raises ``TypeError`` on any keyword). A class's own ``__init__`` that takes
    ``**kwargs`` is read as passing them on to the next ``__init__`` up the MRO, whose named
    parameters are added; a module with no ``__init__`` of its own (only ``forward``) takes none.
    """
    names: set[str] = set()
    owners: list[str] = []
    for c in cls.__mro__:
        if f"{c.__module__}.{c.__qualname__}" == _MODULE or c is object:
            break
        init = c.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            break
        owners.append(c.__qualname__)
        names |= {
            n
            for i, (n, p) in enumerate(params.items())
            if i > 0 and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            break  # it does not pass keywords on
    whose = f"{owners[0]}.__init__" if owners else f"{cls.__qualname__} (it has no __init__ of its own)"
    return frozenset(names), whose


def _not_taken(option: str, accepted: frozenset[str], whose: str) -> str | None:
    if option in accepted:
        return None
    if whose.endswith("of its own)"):
        return f"not a constructor argument of {whose}"
    return f"not a parameter of {whose}"


def describe(impls: Mapping[str, Impl]) -> list[str]:
    lines = []
    for i in impls.values():
        what = "; ".join(f"{o} ({why})" for o, why in i.unchecked.items()) or "none"
        lines.append(
            f"conformance: --impl {i.loss}={i.ref}; options left at their defaults (unchecked): {what}"
        )
    return lines
