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
        elif v.selects:
            from conformance.harness import unselectable

            why = unselectable(backend, v)
            if why is not None:
                marks.append(pytest.mark.skip(reason=why))
        vid = v.loss if v.name == "default" else f"{v.loss}-{v.name}"
        out.append(pytest.param(v, id=vid, marks=marks))
    return out


def _wanted(config: pytest.Config, loss: str) -> bool:
    wanted = selected_losses(config)
    return wanted is None or loss in wanted


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    config = metafunc.config
    if "point" in metafunc.fixturenames:  # each convention's special points, from the spec
        from spec.derive import all_variants

        points = [
            pytest.param(v, c.name, args, id=f"{v.key.replace('[', '-').rstrip(']')}-{c.name}-{n}")
            for v in all_variants()
            if _wanted(config, v.loss)
            for c in v.conventions
            for n, (args, _) in enumerate(c.points)
        ]
        _parametrize(metafunc, ("variant", "convention", "point"), points)
        return
    if "network" in metafunc.fixturenames:  # the seed networks (conformance.training)
        from conformance.training import DTYPES
        from oracle.networks import NETWORKS

        backend = backend_of(config)
        nets = []
        for net in NETWORKS.values():
            if not _wanted(config, net.loss):
                continue
            marks = []
            if backend.loss(net.loss) is None:
                marks.append(pytest.mark.skip(reason=f"backend {backend.name} does not provide {net.loss}"))
            for d in DTYPES:
                if d in backend.dtypes(net.loss):
                    nets.append(pytest.param(net.name, d, id=f"{net.name}-{d}", marks=marks))
        _parametrize(metafunc, ("network", "dtype"), nets)
        return
    if "divergence" in metafunc.fixturenames:
        from conformance.divergences import DIVERGENCES

        ws = [
            pytest.param(d, n, id=d.id if len(d.witnesses) == 1 else f"{d.id}-{n}")
            for d in DIVERGENCES
            if _wanted(config, d.loss)
            for n in range(len(d.witnesses))
        ]
        _parametrize(metafunc, ("divergence", "witness"), ws)
        return
    if "bad_input" in metafunc.fixturenames:  # the invalid calls of each variant, from the spec
        from conformance.bad_inputs import bad_inputs

        backend = backend_of(config)
        bad = []
        for p in _variant_params(config):
            v = p.values[0]
            dtypes = list(backend.dtypes(v.loss))
            dtype: Any = "float32" if "float32" in dtypes or not dtypes else dtypes[0]
            bad += [
                pytest.param(v, dtype, b, id=f"{p.id}-{b.id}", marks=p.marks) for b in bad_inputs(v, dtype)
            ]
        _parametrize(metafunc, ("variant", "dtype", "bad_input"), bad)
        return
    if "variant" not in metafunc.fixturenames:
        return
    backend = backend_of(config)
    params = _variant_params(config, getattr(metafunc.function, "spec_property", None))
    if "dtype" not in metafunc.fixturenames:
        _parametrize(metafunc, ("variant",), params)
        return
    only = getattr(metafunc.function, "dtypes", None)
    combos = []
    for p in params:
        v = p.values[0]
        for d in backend.dtypes(v.loss):
            if only is not None and d not in only:
                continue
            combos.append(pytest.param(v, d, id=f"{p.id}-{d}", marks=p.marks))
    _parametrize(metafunc, ("variant", "dtype"), combos)


_EMPTY = "conformance_nothing_selected"


def _parametrize(metafunc: pytest.Metafunc, names: tuple[str, ...], params: list[Any]) -> None:
    """Parametrize; a check with nothing to run (``--loss`` selects none of its losses) is deselected
    rather than reported as a skip."""
    if not params:
        params = [
            pytest.param(*(None for _ in names), id="none", marks=pytest.mark.conformance_nothing_selected)
        ]
    metafunc.parametrize(names, params)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    drop = [it for it in items if it.get_closest_marker(_EMPTY)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [it for it in items if not it.get_closest_marker(_EMPTY)]


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> Any:
    return backend_of(pytestconfig)
