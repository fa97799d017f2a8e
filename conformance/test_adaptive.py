"""AdaptiveLogSoftmaxWithLoss on the backend against its definition (``spec.composite``),
evaluated by ``oracle.adaptive``.

The backend builds the module for the drawn constructor arguments (in_features, n_classes,
cutoffs, div_value, head_bias; hidden sizes of 0 included) and calls it with the drawn parameters
in place of its own (the torch backend's loss ``AdaptiveLogSoftmaxWithLoss``: ``fn(input, target,
params, n_classes=..., cutoffs=..., div_value=..., head_bias=...) -> (output, loss)``). Checked:
``output`` (log p(y | x) per sample) and ``loss`` (-mean output), and the gradients of the loss
w.r.t. the input and every parameter, under the error model with the oracle's error scales; a
parameter no sample reaches has gradient 0 (torch: None, accepted as 0).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.backends import DType
from conformance.errormodel import compare, round_to, underflow
from oracle.adaptive import adaptive_log_softmax_with_loss, parameter_shapes

LOSS = "AdaptiveLogSoftmaxWithLoss"
_VALUES = st.one_of(st.floats(-3, 3), st.sampled_from([0.0, 1.0, -1.0, 0.5]))


@dataclasses.dataclass(frozen=True)
class ASMCase:
    dtype: DType
    input: np.ndarray[Any, Any]
    target: np.ndarray[Any, Any]
    params: dict[str, np.ndarray[Any, Any]]
    options: dict[str, Any]  # n_classes, cutoffs, div_value, head_bias

    def reproduction(self) -> str:
        params = {k: f"np.{np.asarray(v)!r}".replace("\n", "") for k, v in self.params.items()}
        text = ", ".join(f"{k!r}: {v}" for k, v in params.items())
        return (
            "import numpy as np\nfrom oracle.adaptive import adaptive_log_softmax_with_loss\n"
            f"r = adaptive_log_softmax_with_loss(np.{self.input!r}, np.{self.target!r}, {{{text}}}, "
            f"**{self.options!r})\nprint(r.output, r.loss)  # torch dtype {self.dtype}\n"
        ).replace("\n       ", " ")


@st.composite
def asm_cases(draw: st.DrawFn, dtype: DType) -> ASMCase:
    h = draw(st.integers(1, 5))
    n_classes = draw(st.integers(2, 8))
    k = draw(st.integers(1, min(3, n_classes - 1)))
    cutoffs = sorted(draw(st.sets(st.integers(1, n_classes - 1), min_size=k, max_size=k)))
    div_value = draw(st.sampled_from([1.0, 2.0, 4.0]))
    head_bias = draw(st.booleans())
    shapes = parameter_shapes(h, n_classes, cutoffs, div_value, head_bias)

    def arr(shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
        size = int(np.prod(shape))
        return round_to(np.array(draw(st.lists(_VALUES, min_size=size, max_size=size))).reshape(shape), dtype)

    batched = draw(st.integers(0, 3)) > 0
    n = draw(st.integers(1, 5)) if batched else 1
    x = arr((n, h) if batched else (h,))
    y = np.array(draw(st.lists(st.integers(0, n_classes - 1), min_size=n, max_size=n)), dtype=np.int64)
    y = y if batched else y.reshape(())
    params = {name: arr(shape) for name, shape in shapes.items()}
    opts = {"n_classes": n_classes, "cutoffs": cutoffs, "div_value": div_value, "head_bias": head_bias}
    return ASMCase(dtype, x, y, params, opts)


def _fail(backend: Any, case: ASMCase, what: str) -> None:
    pytest.fail(
        f"{LOSS} does not conform on {backend.name}, dtype {case.dtype}, {case.options}\n  {what}\n"
        f"  reproduce the expected values with (paste into python):\n{case.reproduction()}",
        pytrace=False,
    )


def check(backend: Any, case: ASMCase) -> None:
    fn = backend.loss(LOSS)
    x = backend.tensor(case.input, case.dtype, requires_grad=True)
    ps = {k: backend.tensor(v, case.dtype, requires_grad=True) for k, v in case.params.items()}
    output, loss = fn(x, backend.tensor(case.target, case.dtype), ps, **case.options)
    uf = underflow(case.dtype)
    upstream = np.asarray(round_to(np.array(0.5), case.dtype))
    exp = adaptive_log_softmax_with_loss(
        case.input, case.target, case.params, **case.options, upstream=upstream, underflow=uf
    )
    for what, got, want, scale in (
        ("output", output, exp.output, exp.output_scale),
        ("loss", loss, exp.loss, exp.loss_scale),
    ):
        g = backend.to_numpy(got)
        m = compare(g, want, want, want, scale, case.dtype, what=what)
        if m:
            _fail(backend, case, f"{m.describe()}\n  expected: {want!r}\n  got:      {g!r}")
    names = ["input", *ps]
    grads = backend.grad(loss, [x, *ps.values()], upstream)
    for name, g in zip(names, grads, strict=True):
        want = exp.grads[name]
        if g is None:  # a parameter no sample reaches: torch leaves it out of the graph
            if np.all(want == 0):
                continue
            _fail(backend, case, f"no gradient for {name!r}")
        m = compare(g, want, want, want, exp.grad_scale[name], case.dtype, what=f"gradient w.r.t. {name}")
        if m:
            _fail(backend, case, f"{m.describe()}\n  expected: {want!r}\n  got:      {g!r}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    from conformance.conftest import _parametrize, loss_marks
    from conformance.plugin import backend_of, selected_losses

    wanted = selected_losses(metafunc.config)
    backend = backend_of(metafunc.config)
    if "asm_bad" in metafunc.fixturenames:  # deselected (not skipped) where --loss leaves it out
        on = wanted is None or LOSS in wanted
        _parametrize(
            metafunc, ("asm_bad",), [pytest.param(b[1], id=f"{LOSS}-{b[0]}") for b in BAD] if on else []
        )
        return
    if "asm_dtype" not in metafunc.fixturenames:
        return
    marks = loss_marks(backend, LOSS, f"{backend.name} has no {LOSS}")
    dtypes = list(backend.dtypes(LOSS)) if wanted is None or LOSS in wanted else []
    _parametrize(metafunc, ("asm_dtype",), [pytest.param(d, id=f"{LOSS}-{d}", marks=marks) for d in dtypes])


@given(data=st.data())
def test_adaptive_log_softmax_with_loss(backend: Any, asm_dtype: DType, data: st.DataObject) -> None:
    """output, loss and their gradients against the definition."""
    check(backend, data.draw(asm_cases(asm_dtype), label="case"))


def _bad_calls() -> list[tuple[str, dict[str, Any]]]:
    """Invalid calls of the module, each breaking one rule; the oracle rejects each and torch 2.13
    raises on each (measured)."""
    opts = {"n_classes": 5, "cutoffs": [2], "div_value": 2.0, "head_bias": False}
    shapes = parameter_shapes(3, 5, [2], 2.0, False)
    params = {k: np.zeros(s) for k, s in shapes.items()}
    base: dict[str, Any] = {"input": np.zeros((2, 3)), "target": np.array([0, 3]), "params": params, **opts}
    return [
        ("target-too-large", {**base, "target": np.array([0, 5])}),
        ("target-negative", {**base, "target": np.array([0, -1])}),
        ("target-batch-size", {**base, "target": np.array([0, 1, 2])}),
        ("input-3d", {**base, "input": np.zeros((1, 2, 3)), "target": np.array([[0, 3]])}),
        ("target-float", {**base, "target": np.array([0.0, 1.0])}),
    ]


BAD = _bad_calls()


def test_adaptive_rejects_bad_input(backend: Any, asm_bad: dict[str, Any]) -> None:
    """The oracle rejects the call, naming the argument; the backend must raise."""
    from oracle.api import OracleInputError

    call = dict(asm_bad)
    x, t, params = call.pop("input"), call.pop("target"), call.pop("params")
    with pytest.raises(OracleInputError):
        adaptive_log_softmax_with_loss(x, t, params, **call)
    fn = backend.loss(LOSS)
    ps = {k: backend.tensor(v, "float64") for k, v in params.items()}
    try:
        got = fn(backend.tensor(x, "float64"), backend.tensor(t, "float64"), ps, **call)
    except Exception:
        return
    pytest.fail(f"{LOSS} accepted an invalid call: returned {got}", pytrace=False)
