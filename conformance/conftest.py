"""Parametrisation of the suite: loss variant × dtype, from the spec's registry and the backend.

Test ids carry the loss name (``test_value[cross_entropy-class_index-float32]``); ``--loss`` selects
exact names. Options and profiles live in ``conformance.plugin``.

Collection imports neither SymPy nor torch (together about ten seconds): the spec's variants, their
invalid calls and the known divergences come from ``conformance.catalogue``, whose records are the
parameters until a check runs (``pytest_runtest_setup`` gives the check the spec's own objects), and
the backend is asked which losses it has by ``conformance.backends.provides``.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance import catalogue
from conformance.backends import provides
from conformance.plugin import backend_of, selected_losses

#: a check whose loss the backend's ``provides`` said it has: ``loss(name)`` is asked when it runs
_NEEDS_LOSS = "conformance_needs_loss"


def loss_marks(backend: Any, loss: str, reason: str) -> list[Any]:
    """The marks of a check of ``loss``: a skip with ``reason`` where the backend does not provide
    it, and where a backend's own ``provides`` answered, the answer's check when the check runs."""
    if not provides(backend, loss):
        return [pytest.mark.skip(reason=reason)]
    if callable(getattr(backend, "provides", None)):
        return [getattr(pytest.mark, _NEEDS_LOSS)(loss, reason=reason)]
    return []


def _variant_params(config: pytest.Config, prop: str | None = None) -> list[Any]:
    wanted = selected_losses(config)
    backend = backend_of(config)
    out = []
    for v in catalogue.load().variants:
        if wanted is not None and v.loss not in wanted:
            continue
        if prop is not None and prop not in v.properties:
            continue  # a metamorphic check runs only where the spec declares the property
        marks = loss_marks(backend, v.loss, f"backend {backend.name} does not provide {v.loss}")
        if v.selects and not any(m.name == "skip" for m in marks):
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
        points = [
            pytest.param(
                v, c, catalogue.PointEntry(v.key, i, n), id=f"{v.key.replace('[', '-').rstrip(']')}-{c}-{n}"
            )
            for v in catalogue.load().variants
            if _wanted(config, v.loss)
            for i, (c, count) in enumerate(v.conventions)
            for n in range(count)
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
            marks = loss_marks(backend, net.loss, f"backend {backend.name} does not provide {net.loss}")
            for d in DTYPES:
                if d in backend.dtypes(net.loss):
                    nets.append(pytest.param(net.name, d, id=f"{net.name}-{d}", marks=marks))
        _parametrize(metafunc, ("network", "dtype"), nets)
        return
    if "divergence" in metafunc.fixturenames:
        ws = [
            pytest.param(d, n, id=d.id if d.witnesses == 1 else f"{d.id}-{n}")
            for d in catalogue.load().divergences
            if _wanted(config, d.loss)
            for n in range(d.witnesses)
        ]
        _parametrize(metafunc, ("divergence", "witness"), ws)
        return
    if "bad_input" in metafunc.fixturenames:  # the invalid calls of each variant, from the spec
        backend = backend_of(config)
        bad = []
        for p in _variant_params(config):
            v = p.values[0]
            dtypes = list(backend.dtypes(v.loss))
            dtype: Any = "float32" if "float32" in dtypes or not dtypes else dtypes[0]
            bad += [
                pytest.param(
                    v, dtype, catalogue.BadInputEntry(v.key, dtype, b), id=f"{p.id}-{b}", marks=p.marks
                )
                for b in v.bad_inputs[dtype]
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Any:
    """After the fixtures: a loss the backend's ``provides`` said it has asked of ``loss(name)``
    (a skip with the collection's reason where it is missing after all), and each catalogue record
    among the check's arguments replaced by the spec's object it stands for."""
    result = yield
    needs = item.get_closest_marker(_NEEDS_LOSS)
    if needs is not None and backend_of(item.config).loss(needs.args[0]) is None:
        pytest.skip(needs.kwargs["reason"])
    args: dict[str, Any] = getattr(item, "funcargs", {})
    for name, value in args.items():
        if isinstance(value, catalogue.Entry):
            args[name] = value.resolve()
    return result


def _large_only(item: pytest.Item) -> bool:
    return item.path.name == "test_large.py"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the checks with nothing selected; under the ``large`` profile, every check but those
    at an LLM's sizes (``test_large.py``), which the other profiles skip with the reason."""
    from hypothesis import settings

    large = settings.get_current_profile_name() == "large"

    def unwanted(it: pytest.Item) -> bool:
        if it.get_closest_marker(_EMPTY):
            return True
        if not _large_only(it):
            return large
        loss = getattr(it, "callspec", None) and it.callspec.params.get("loss")  # type: ignore[attr-defined]
        return isinstance(loss, str) and not _wanted(config, loss)

    drop = [it for it in items if unwanted(it)]
    if drop:
        config.hook.pytest_deselected(items=drop)
        dropped = set(map(id, drop))
        items[:] = [it for it in items if id(it) not in dropped]


@pytest.fixture(scope="session")
def backend(pytestconfig: pytest.Config) -> Any:
    return backend_of(pytestconfig)
