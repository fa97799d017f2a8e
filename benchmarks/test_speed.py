"""oracle vs torch-cpu, float64, value + gradient, at the sizes of issue 12 (see ``conftest.py``).

- every element-wise loss of ``spec`` at 10^7 elements (inputs drawn from each argument's domain);
- cross_entropy at 4096 × 32000 (an LLM's tokens × vocabulary) with index targets, plain and with
  class weights and label smoothing;
- linear_cross_entropy at N = 4096, H = 1024, V = 32000 against torch's reference and chunked paths;
- ctc_loss at T = 200, N = 16, C = 30, S = 50.

torch runs with its default intra-op threads (every core); the oracle with ``oracle.api``'s chunk
threads (every core).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the benchmarks compare with torch-cpu")
F = torch.nn.functional

#: kl_div's default reduction warns (in torch and the oracle, as torch's contract says); timed as is
pytestmark = pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss:UserWarning")

ROUNDS = 3  # each side: the min of three runs (the first of them warm: inputs are built before)


@dataclass
class Case:
    name: str
    arrays: dict[str, np.ndarray[Any, Any]]
    oracle: Callable[[], Any]
    torch: Callable[[], Any]

    @property
    def input_bytes(self) -> int:
        return sum(a.nbytes for a in self.arrays.values())


def _draw(kind: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """Values of a ``spec.Domain`` kind, away from its edges (a benchmark times the common case)."""
    if kind == "real":
        return rng.standard_normal(shape)
    if kind in ("unit", "probabilities"):
        return rng.uniform(0.05, 0.95, shape)
    if kind == "nonnegative":
        return np.abs(rng.standard_normal(shape)) + 0.1
    if kind == "sign":
        return np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    raise ValueError(f"no benchmark draw for domain {kind!r}")


def _elementwise() -> list[str]:
    from spec import REGISTRY

    return [n for n, loss in REGISTRY.items() if loss.variants[0].sample_axis is None]


def _torch_grad(fn: Callable[..., Any], tensors: dict[str, Any], diff: tuple[str, ...], **kw: Any) -> Any:
    """forward + backward in float64: the value and the gradients w.r.t. ``diff``."""
    leaves = {k: (t.detach().requires_grad_(k in diff)) for k, t in tensors.items()}
    out = fn(*leaves.values(), **kw)
    grads = torch.autograd.grad(out, [leaves[k] for k in diff])
    return out.detach(), grads


def pointwise(name: str, n: int = 10**7) -> Case:
    import oracle
    from spec import REGISTRY

    v = REGISTRY[name].variants[0]
    rng = np.random.default_rng(0)
    arrays = {a.name: _draw(a.domain.kind, (n,), rng) for a in v.args if not a.optional}
    tensors = {k: torch.from_numpy(a) for k, a in arrays.items()}
    diff = tuple(k for k in v.differentiable if k in arrays)
    fn = getattr(F, name)
    return Case(
        name,
        arrays,
        lambda: oracle.evaluate(name, **arrays, wrt=diff),
        lambda: _torch_grad(fn, tensors, diff),
    )


def cross_entropy(n: int = 4096, c: int = 32000, options: bool = False) -> Case:
    import oracle

    rng = np.random.default_rng(0)
    arrays = {"input": rng.standard_normal((n, c)), "target": rng.integers(0, c, n)}
    kw: dict[str, Any] = {}
    if options:
        arrays["weight"] = rng.uniform(0.5, 2.0, c)
        kw["label_smoothing"] = 0.1
    tensors = {k: torch.from_numpy(a) for k, a in arrays.items()}
    name = f"cross_entropy {n}x{c}" + (" weight, label_smoothing=0.1" if options else "")
    return Case(
        name,
        arrays,
        lambda: oracle.evaluate("cross_entropy", **arrays, wrt=("input",), **kw),
        lambda: _torch_grad(F.cross_entropy, tensors, ("input",), **kw),
    )


def linear_cross_entropy(path: str, n: int = 4096, h: int = 1024, v: int = 32000) -> Case:
    from oracle.composite import linear_cross_entropy as lce

    rng = np.random.default_rng(0)
    arrays = {
        "input": rng.standard_normal((n, h)),
        "linear_weight": rng.standard_normal((v, h)) / np.sqrt(h),
        "target": rng.integers(0, v, n),
    }
    tensors = {k: torch.from_numpy(a) for k, a in arrays.items()}
    kw = {} if path == "reference" else {"options": torch.nn.LinearCrossEntropyOptions()}
    diff = ("input", "linear_weight")
    return Case(
        f"linear_cross_entropy N={n} H={h} V={v} vs torch's {path} path",
        arrays,
        lambda: lce(arrays["input"], arrays["linear_weight"], arrays["target"]),
        lambda: _torch_grad(F.linear_cross_entropy, tensors, diff, **kw),
    )


def ctc(t: int = 200, n: int = 16, c: int = 30, s: int = 50) -> Case:
    from oracle.ctc import ctc_loss

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((t, n, c))
    arrays = {
        "log_probs": logits - np.log(np.exp(logits).sum(-1, keepdims=True)),
        "targets": rng.integers(1, c, (n, s)),
        "input_lengths": np.full(n, t),
        "target_lengths": np.full(n, s),
    }
    tensors = {k: torch.from_numpy(a) for k, a in arrays.items()}
    return Case(
        f"ctc_loss T={t} N={n} C={c} S={s}",
        arrays,
        lambda: ctc_loss(**arrays),
        lambda: _torch_grad(F.ctc_loss, tensors, ("log_probs",)),
    )


CASES: dict[str, Callable[[], Case]] = {
    **{f"{n} 1e7": (lambda n=n: pointwise(n)) for n in _elementwise()},
    "cross_entropy": cross_entropy,
    "cross_entropy options": lambda: cross_entropy(options=True),
    "linear_cross_entropy reference": lambda: linear_cross_entropy("reference"),
    "linear_cross_entropy chunked": lambda: linear_cross_entropy("chunked"),
    "ctc_loss": ctc,
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request: pytest.FixtureRequest) -> Any:
    c = CASES[request.param]()
    yield c
    del c


def test_oracle(benchmark: Any, case: Case, peak_over_input: Any) -> None:
    benchmark.group = case.name
    benchmark.extra_info["side"] = "oracle"
    benchmark.extra_info["peak_over_input"] = peak_over_input(case.name, case.oracle, case.input_bytes)
    benchmark.pedantic(case.oracle, rounds=ROUNDS, iterations=1)


def test_torch(benchmark: Any, case: Case) -> None:
    benchmark.group = case.name
    benchmark.extra_info["side"] = "torch"
    benchmark.pedantic(case.torch, rounds=ROUNDS, iterations=1)
