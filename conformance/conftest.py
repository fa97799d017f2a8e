"""Parametrisation of the suite: loss variant × dtype, from the spec's registry and the backend.

Test ids carry the loss name (``test_value[cross_entropy-class_index-float32]``); ``--loss`` selects
exact names. Options and profiles live in ``conformance.plugin``.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance.plugin import backend_of, selected_losses


def _variant_params(config: pytest.Config, prop: str | None = None) -> list[Any]:
    from spec.derive import all_variants

    wanted = selected_losses(config)
    backend = backend_of(config)
    out = []
    for v in all_variants():
        if wanted is not None and v.loss not in wanted:
            continue
        if prop is not None and prop not in v.properties:
            continue  # a metamorphic check runs only where the spec declares the property
        marks = []
        if backend.loss(v.loss) is None:
            marks.append(pytest.mark.skip(reason=f"backend {backend.name} does not provide {v.loss}"))
        vid = v.loss if v.name == "default" else f"{v.loss}-{v.name}"
        out.append(pytest.param(v, id=vid, marks=marks))
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" not in metafunc.fixturenames:
        return
    config = metafunc.config
    backend = backend_of(config)
    params = _variant_params(config, getattr(metafunc.function, "spec_property", None))
    if "dtype" not in metafunc.fixturenames:
        metafunc.parametrize("variant", params)
        return
    only = getattr(metafunc.function, "dtypes", None)
    combos = []
    for p in params:
        v = p.values[0]
        for d in backend.dtypes(v.loss):
            if only is not None and d not in only:
                continue
            combos.append(pytest.param(v, d, id=f"{p.id}-{d}", marks=p.marks))
    metafunc.parametrize(("variant", "dtype"), combos)


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> Any:
    return backend_of(pytestconfig)
