"""The spec's registry: names, signatures and defaults match torch.nn.functional; every variant is
documented and derivable; the derivation docs are fresh."""

from __future__ import annotations

import inspect

import pytest
import sympy as sp

from spec import REGISTRY
from spec.derive import all_variants, derive

torch_f = pytest.importorskip("torch.nn.functional")

PROPERTIES = {"shift_invariant", "grad_sums_to_zero", "zero_at_target"}  # conformance/test_properties.py


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_signature_and_defaults_match_torch(name: str) -> None:
    """Each loss is a torch.nn.functional function; its arguments appear in torch's order and every
    option's default is torch's default."""
    loss = REGISTRY[name]
    params = inspect.signature(getattr(torch_f, name)).parameters
    order = list(params)
    positions = [order.index(a) for a in loss.signature]
    assert positions == sorted(positions), f"{name}: {loss.signature} not in torch's order {order}"
    for v in loss.variants:
        for p in v.params:
            assert params[p.name].default == p.default, f"{name}.{p.name}"
        for a in v.args:
            if a.optional:
                assert params[a.name].default is None, f"{name}.{a.name}"
    assert params["reduction"].default == "mean"


@pytest.mark.parametrize("v", all_variants(), ids=lambda v: v.key)
def test_variant_is_documented_and_derivable(v: object) -> None:
    from spec import Variant

    assert isinstance(v, Variant)
    assert v.doc.splitlines()[0].endswith("."), "a one-line summary first"
    assert "Convention:" in v.doc and "Reference:" in v.doc
    assert set(v.properties) <= PROPERTIES
    forms = derive(v)
    assert set(forms.grads) == set(v.differentiable)
    for g in forms.grads.values():
        assert not g.has(sp.Derivative), "every gradient is in closed form"
