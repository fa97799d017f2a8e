"""The conformance harness catches planted bugs (``tests/planted/mutants.py``), and torch-cpu does not
trip it on the same inputs.

For each mutant, ``test_planted_bug_is_caught``:

* puts the mutant in place of its loss on torch-cpu (``OverrideBackend``) and searches, with
  ``hypothesis.find``, the suite's own strategy for the check that should catch it: ``cases(variant,
  dtype)`` for the value check (``conformance/test_values.py::test_value``), and the same plus a drawn
  ``wrt`` subset and ``upstream(shape, dtype)`` for the gradient check
  (``conformance/test_gradients.py::test_gradient``); a counterexample is an example on which
  ``conformance.harness.check`` raises ``ConformanceFailure``; the derandomised search draws at most
  ``SEARCH.max_examples`` examples, then Hypothesis shrinks what it found;
* asserts the shrunk counterexample's message is readable: its first line names the loss, the
  variant and the dtype; its problem line says what the plant should cause (``Plant.says``) and, for
  a wrong number, an expected and a got that differ, followed by ``expected:``/``got:`` lines;
  a ``reproduce with (paste into python):`` section holds a ``replay(...)`` call; the
  counterexample has at most ``MAX_ELEMENTS`` input elements;
* executes that reproduction's code and asserts it rebuilds exactly the counterexample (arrays,
  options, reduction, wrt, upstream), which fails the mutant again;
* asserts torch-cpu conforms on the counterexample (``check`` with ``known_ok=True``: no known
  divergence excused), so the failure is the plant's, not a false alarm.

``test_mutant_conforms_away_from_its_bug`` checks that each mutant passes the same ``check`` on a
typical case for each reduction (the value only, for a gradient plant): the plants are subtle.
"""

from __future__ import annotations

import dataclasses
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample, UnsatisfiedAssumption

from conformance import harness
from conformance.backends import Backend, resolve
from conformance.backends.override import OverrideBackend
from conformance.divergences import known
from conformance.harness import ConformanceFailure, check, output_shape
from conformance.strategies import Case, cases, upstream
from spec import REDUCTIONS, REGISTRY, Variant
from spec.derive import variant_by_key
from tests.planted import mutants

Array = np.ndarray[Any, Any]

TORCH = resolve("torch-cpu")

#: the search for a counterexample: derandomised (the same examples every run), no database, and no
#: explain phase: it runs after shrinking and re-runs the predicate on variations of the shrunk
#: example, and ``find`` returns the last example that satisfied it (a larger one, not the shrunk one)
SEARCH = settings(
    max_examples=300,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
    phases=[p for p in Phase if p is not Phase.explain],
)

#: the largest shrunk counterexample (input elements) still called readable
MAX_ELEMENTS = 12


@dataclass(frozen=True)
class Probe:
    """One call of ``conformance.harness.check``: a case, the inputs to differentiate, the upstream."""

    case: Case
    wrt: tuple[str, ...] = ()
    upstream: Array | None = None

    def check(self, backend: Backend, *, known_ok: bool = False) -> None:
        check(backend, self.case, wrt=self.wrt, upstream=self.upstream, known_ok=known_ok)


def value_probes(variant: Variant, dtype: str) -> st.SearchStrategy[Probe]:
    """What ``test_value`` draws."""
    return cases(variant, dtype).map(Probe)  # type: ignore[arg-type]


@st.composite
def gradient_probes(draw: st.DrawFn, variant: Variant, dtype: str) -> Probe:
    """What ``test_gradient`` draws: a case, a non-empty subset of the differentiable inputs, and a
    non-unit upstream gradient shaped like the value."""
    case = draw(cases(variant, dtype))  # type: ignore[arg-type]
    diff = list(case.differentiable)
    wrt = draw(st.lists(st.sampled_from(diff), min_size=1, max_size=len(diff), unique=True))
    up = draw(upstream(output_shape(case), dtype))  # type: ignore[arg-type]
    return Probe(case, tuple(wrt), up)


STRATEGIES: dict[str, Callable[[Variant, str], st.SearchStrategy[Probe]]] = {
    "value": value_probes,
    "gradient": gradient_probes,
}


@dataclass(frozen=True)
class Plant:
    mutant: str  # attribute of tests.planted.mutants
    dtype: str
    says: str  # what the failure's problem line must contain
    typical: dict[str, Any]  # arrays of a typical case, on which the mutant conforms
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def variant(self) -> Variant:
        return variant_by_key(mutants.PLANTED[self.mutant][0])

    @property
    def check(self) -> str:
        return mutants.PLANTED[self.mutant][1]

    @property
    def loss(self) -> str:
        return mutants.LOSS_OF[self.mutant]

    def backend(self) -> OverrideBackend:
        return OverrideBackend(TORCH, {self.loss: getattr(mutants, self.mutant)})


_REG = {"input": [0.5, -1.25, 2.0], "target": [0.25, 0.5, -1.0]}
_UNIT = {"input": [0.25, 0.5, 0.75], "target": [0.5, 1.0, 0.0]}
_LOGITS = {"input": [0.5, -1.0, 2.0], "target": [0.25, 1.0, 0.0]}
_INDEX = {"input": [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], "target": np.array([2, 0])}
_PROBS = {"input": [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], "target": [[0.25, 0.25, 0.5], [1.0, 0.0, 0.0]]}
_CE = {"ignore_index": -100, "label_smoothing": 0.0}
# equal scores: the loss is 0 whatever the label's sign (and the margin 0)
_RANK = {"input1": [0.5, -1.25, 2.0], "input2": [0.5, -1.25, 2.0], "target": [1.0, -1.0, 1.0]}
_KL = {"input": [-0.5, -1.25, -2.0], "target": [0.25, 0.5, 0.125]}
_POISSON = {"input": [0.5, -1.25, 2.0], "target": [2.5, 2.0, 3.0]}
_POISSON_OPTS = {"log_input": True, "full": True, "eps": 1e-8}
_GAUSS = {"input": [0.5, -1.25, 2.0], "target": [0.25, 0.5, -1.0], "var": [0.5, 1.0, 2.0]}
_MULTILABEL = {"input": [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], "target": [[0.0, 1.0, 1.0], [1.0, 0.0, 0.5]]}
_MM = {"input": [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], "target": np.array([2, 0])}
_MLM = {"input": [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], "target": np.array([[2, -1, -1], [0, 1, -1]])}
_COS = {"input1": [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], "input2": [[1.0, 0.5, 0.5], [-1.0, 2.0, 0.25]],
        "target": [1.0, -1.0]}  # fmt: skip
_TRIP = {"anchor": [[0.5, -1.0, 2.0], [1.5, 0.25, -0.5]], "positive": [[1.0, 0.5, 0.5], [-1.0, 2.0, 0.25]],
         "negative": [[0.0, 0.5, 2.5], [1.0, 1.0, -1.0]]}  # fmt: skip
_TRIP_FAR = {"anchor": [[1.0, 0.0, 0.5], [0.0, 2.0, 0.0]], "positive": [[1.0, 0.0, 0.5], [0.0, 2.0, 0.0]],
             "negative": [[-10.0, 0.0, -5.0], [0.0, -10.0, 0.0]]}  # fmt: skip
_VALUE = "value: "
_GRAD = "gradient w.r.t. "

PLANTS = (
    Plant("l1_mean_over_batch", "float32", _VALUE, _REG),
    Plant("l1_grad_one_at_zero", "float32", _GRAD, _REG),
    Plant("mse_grad_no_factor_two", "float32", _GRAD, _REG),
    Plant("mse_none_squeezed", "float32", "value: shape ", _REG),
    Plant("smooth_l1_beta_zero_nan", "float32", _GRAD, _REG, {"beta": 1.0}),
    Plant("smooth_l1_sum_in_half", "float32", _VALUE, _REG, {"beta": 1.0}),
    Plant("bce_no_clamp", "float32", _VALUE, _UNIT),
    Plant(
        "bce_clamps_input_in_place", "float32", "modified its input argument(s) in place: ['input']", _UNIT
    ),
    Plant("bce_grad_ignores_weight", "float32", _GRAD + "input: ", _UNIT),
    Plant("bce_logits_naive", "float32", _VALUE, _LOGITS),
    Plant("bce_logits_pos_weight_grad", "float32", _GRAD + "input: ", _LOGITS),
    Plant("ce_no_max_subtraction", "float64", _VALUE, _INDEX, _CE),
    Plant("ce_smoothing_ignores_mask", "float32", _VALUE, _INDEX, {**_CE, "label_smoothing": 0.125}),
    Plant("ce_weighted_mean_by_count", "float32", _VALUE, _INDEX, _CE),
    Plant("ce_probs_mean_by_weight_mass", "float32", _VALUE, _PROBS, {"label_smoothing": 0.0}),
    Plant("huber_mean_by_weight", "float32", _VALUE, _REG, {"delta": 1.0}),
    Plant("huber_linear_ignores_delta", "float32", _VALUE, _REG, {"delta": 1.0}),
    Plant(
        "soft_margin_ignores_target",
        "float32",
        _VALUE,
        {"input": [0.5, -1.25, 2.0], "target": [1.0, 1.0, 1.0]},
    ),
    Plant("nll_weighted_mean_by_count", "float32", _VALUE, _INDEX, {"ignore_index": -100}),
    Plant("nll_ignored_counted", "float32", _VALUE, _INDEX, {"ignore_index": -100}),
    Plant("margin_ranking_sign_flipped", "float32", _VALUE, _RANK, {"margin": -1.0}),
    Plant("margin_ranking_margin_negated", "float32", _VALUE, _RANK, {"margin": 0.0}),
    # (y = -1 with distances inside the margin, and y = 1: the clamp does nothing there)
    Plant(
        "hinge_embedding_margin_unclamped",
        "float32",
        _VALUE,
        {"input": [0.5, 0.25, -0.5], "target": [1.0, -1.0, -1.0]},
        {"margin": 1.0},
    ),
    Plant("mse_weight_detached", "float32", "no gradient for 'weight'", _REG),
    Plant("bce_logits_weight_ignored", "float32", _VALUE, _LOGITS),
    Plant(
        "ce_probs_weight_detached", "float32", "no gradient for 'weight'", _PROBS, {"label_smoothing": 0.0}
    ),
    Plant("kl_div_plain_ylogy", "float32", _VALUE, _KL, {"log_target": False}),
    Plant("kl_div_log_target_ignored", "float32", _VALUE, _KL, {"log_target": False}),
    Plant("kl_div_batchmean_by_numel", "float32", _VALUE, _KL, {"log_target": False}),
    # counts 2 and 3 (and 0.5 without full): the Stirling term applies alike in the mutant
    Plant("poisson_stirling_everywhere", "float32", _VALUE, _POISSON, _POISSON_OPTS),
    Plant("poisson_eps_ignored", "float32", _VALUE, _POISSON, _POISSON_OPTS),
    Plant("poisson_log_input_ignored", "float32", _VALUE, _POISSON, _POISSON_OPTS),
    Plant("gaussian_eps_ignored", "float32", _VALUE, _GAUSS, {"full": False, "eps": 1e-6}),
    # var above eps: the clamp does nothing
    Plant("gaussian_var_grad_clamped", "float32", _GRAD + "var: ", _GAUSS, {"full": False, "eps": 1e-6}),
    Plant("gaussian_full_whole_log_2pi", "float32", _VALUE, _GAUSS, {"full": False, "eps": 1e-6}),
    # (N, C): the last dim is dim 1
    Plant("multilabel_mean_over_dim1", "float32", _VALUE, _MULTILABEL),
    Plant("multilabel_weight_detached", "float32", "no gradient for 'weight'", _MULTILABEL),
    Plant("multi_margin_square_grad_halved", "float32", _GRAD, _MM, {"p": 1, "margin": 1.0}),
    Plant("multi_margin_p_ignored", "float32", _VALUE, _MM, {"p": 1, "margin": 1.0}),
    Plant("multi_margin_margin_fixed", "float32", _VALUE, _MM, {"p": 1, "margin": 1.0}),
    Plant("multi_margin_weighted_mean", "float32", _VALUE, _MM, {"p": 1, "margin": 1.0}),
    # no repeated label, nothing after the first -1
    Plant("multilabel_margin_set_not_multiset", "float32", _VALUE, _MLM),
    Plant("multilabel_margin_reads_past_end", "float32", _VALUE, _MLM),
    Plant("cosine_embedding_similarity_clamped", "float32", _VALUE, _COS, {"margin": 0.0}),
    Plant("cosine_embedding_margin_ignored", "float32", _VALUE, _COS, {"margin": 0.0}),
    Plant(
        "triplet_swap_ignored",
        "float32",
        _VALUE,
        _TRIP,
        {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False},
    ),
    # eps 0: inside or outside the norm alike
    Plant(
        "triplet_eps_outside_norm",
        "float32",
        _VALUE,
        _TRIP,
        {"margin": 1.0, "p": 2.0, "eps": 0.0, "swap": False},
    ),
    Plant(
        "triplet_p_ignored", "float32", _VALUE, _TRIP, {"margin": 1.0, "p": 2.0, "eps": 1e-6, "swap": False}
    ),
    Plant("triplet_distance_swap_wrong_pair", "float32", _VALUE, _TRIP, {"margin": 1.0, "swap": False}),
    Plant("triplet_distance_margin_fixed", "float32", _VALUE, _TRIP, {"margin": 1.0, "swap": False}),
    Plant(  # (the typical case is one pairwise_distance and the cosine distance agree on: no triplet)
        "triplet_distance_function_ignored",
        "float32",
        _VALUE,
        _TRIP_FAR,
        {"margin": 1.0, "swap": False, "distance_function": "cosine_distance"},
    ),
    Plant(
        "triplet_distance_swap_max",
        "float32",
        _VALUE,
        _TRIP,
        {"margin": 1.0, "swap": False, "distance_function": "squared_euclidean_distance"},
    ),
)
PLANTS += (
    Plant("l1_sum_accumulated_in_double", "float32", "returned dtype torch.float64 for float32 inputs", _REG),
    Plant("l1_custom_backward_ignores_upstream", "float32", _GRAD, _REG),
    Plant("smooth_l1_custom_backward_sums_upstream", "float32", _GRAD, _REG, {"beta": 1.0}),
    Plant("kl_div_none_flattened", "float32", "value: shape ", _KL, {"log_target": False}),
    # var above eps: the clamp changes nothing
    Plant(
        "gaussian_var_clamped_in_place",
        "float32",
        "modified its input argument(s) in place: ['var']",
        _GAUSS,
        {"full": False, "eps": 1e-6},
    ),
    Plant("multilabel_soft_margin_naive", "float32", _VALUE, _MULTILABEL),
    Plant("margin_ranking_target_detached", "float32", "no gradient for 'target'", _RANK, {"margin": 0.0}),
    Plant("ce_smoothing_over_other_classes", "float32", _VALUE, _INDEX, _CE),
)
_IDS = [p.mutant for p in PLANTS]


def test_every_mutant_is_planted() -> None:
    """The table covers every mutant; each has its torch function's parameters (names, kinds,
    defaults) and a row in the module docstring's table naming its variant and check."""
    import inspect

    import torch

    exported = sorted(n for n in mutants.__all__ if not n.isupper())
    assert sorted(p.mutant for p in PLANTS) == sorted(mutants.PLANTED) == exported

    def params(fn: Any) -> list[tuple[str, Any, Any]]:
        return [(q.name, q.kind, q.default) for q in inspect.signature(fn).parameters.values()]

    rows = {ln.split()[0]: ln.split()[1:3] for ln in (mutants.__doc__ or "").splitlines() if ln.strip()}
    for name, (key, check_name) in mutants.PLANTED.items():
        assert params(getattr(mutants, name)) == params(getattr(torch.nn.functional, mutants.LOSS_OF[name]))
        assert rows.get(name) == [key, check_name], name


def _fails(backend: Backend, probe: Probe, *, known_ok: bool = False) -> bool:
    try:
        probe.check(backend, known_ok=known_ok)
    except ConformanceFailure:
        return True
    except UnsatisfiedAssumption:  # a known divergence of the backend: not a counterexample
        return False
    return False


def _replayed(message: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Execute the reproduction printed in ``message``; return the arguments it passed to replay."""
    code = textwrap.dedent(message.split("reproduce with (paste into python):\n", 1)[1])
    seen: dict[str, Any] = {}

    def record(backend: str, loss: str, **kwargs: Any) -> None:
        seen.update(backend=backend, loss=loss, **kwargs)

    monkeypatch.setattr(harness, "replay", record)
    exec(compile(code, "<reproduction>", "exec"), {})
    return seen


@pytest.mark.parametrize("plant", PLANTS, ids=_IDS)
def test_planted_bug_is_caught(plant: Plant, monkeypatch: pytest.MonkeyPatch) -> None:
    variant, backend = plant.variant, plant.backend()
    try:
        probe = find(
            STRATEGIES[plant.check](variant, plant.dtype), lambda p: _fails(backend, p), settings=SEARCH
        )
    except NoSuchExample:
        pytest.fail(
            f"the {plant.check} check found no counterexample to {plant.mutant} "
            f"in {SEARCH.max_examples} examples"
        )

    # Rerun outside the search with known_ok=True (nothing excused); the same as the search's check,
    # since no known divergence applies to a loss replaced by an override.
    assert known(backend, probe.case, probe.wrt) is None
    with pytest.raises(ConformanceFailure) as failure:
        probe.check(backend, known_ok=True)
    message = str(failure.value)
    head, problem = message.splitlines()[:2]
    assert head.startswith(f"{plant.loss} ({variant.name}) does not conform on {backend.name} "), message
    assert f"dtype {plant.dtype}," in head, message
    assert plant.says in problem, message
    if "outside the bound" in problem and "shape" not in problem:
        numbers = re.search(r"expected (\S+?)(?:,| \(accepted range .*?\),) got (\S+?), ", problem)
        # or, for a non-finite result, the words: "got NaN where the oracle's value is finite"
        words = re.search(r"got (NaN|-?inf) where the oracle's value is finite: expected \S+", problem) or (
            re.search(r"got (\S+) where the oracle's value is NaN", problem)
        )
        assert (numbers and numbers[1] != numbers[2]) or words, message
        assert "\n  expected: " in message and "\n  got:      " in message, message
    assert "\n  reproduce with (paste into python):\n" in message and "replay(" in message, message
    assert probe.case.arrays[REGISTRY[plant.loss].tensors[0]].size <= MAX_ELEMENTS, message

    # the reproduction is exact: it rebuilds this very case, which fails again
    seen = _replayed(message, monkeypatch)
    assert (seen["backend"], seen["loss"]) == (backend.base.name, plant.loss)
    assert seen["impl"] == {plant.loss: f"tests.planted.mutants:{plant.mutant}"}
    assert (seen["dtype"], seen["reduction"]) == (plant.dtype, probe.case.reduction)
    assert seen["options"] == probe.case.options and tuple(seen["wrt"]) == probe.wrt
    assert seen["arrays"].keys() == probe.case.arrays.keys()
    for k, a in probe.case.arrays.items():
        assert seen["arrays"][k].dtype.kind == a.dtype.kind and np.array_equal(seen["arrays"][k], a), k
    assert (seen["upstream"] is None) == (probe.upstream is None)
    if probe.upstream is not None:
        assert np.array_equal(seen["upstream"], probe.upstream)
    rebuilt = Case(
        plant.loss, variant.name, seen["dtype"], seen["arrays"], seen["options"], seen["reduction"]
    )
    assert _fails(backend, Probe(rebuilt, tuple(seen["wrt"]), seen["upstream"]), known_ok=True)

    # and it runs as printed (copy-pasted into a fresh interpreter it would do the same): it fails
    # with the same problem
    monkeypatch.undo()
    code = textwrap.dedent(message.split("reproduce with (paste into python):\n", 1)[1])
    with pytest.raises(ConformanceFailure) as again:
        exec(compile(code, "<reproduction>", "exec"), {})
    assert str(again.value).splitlines()[1] == problem

    # no false alarm: torch itself conforms here, known divergences included
    probe.check(TORCH, known_ok=True)


@pytest.mark.parametrize("plant", PLANTS, ids=_IDS)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mutant_conforms_away_from_its_bug(plant: Plant, reduction: str) -> None:
    """On a typical case the mutant passes the check (a gradient plant: the check of its value)."""
    variant = plant.variant
    ints = {n for n, r in variant.roles.items() if r.role in ("index", "index_set")}
    arrays = {k: np.asarray(v) if k in ints else np.asarray(v, np.float64) for k, v in plant.typical.items()}
    case = Case(plant.loss, variant.name, plant.dtype, arrays, dict(plant.options), reduction)  # type: ignore[arg-type]
    wrt = () if plant.check == "gradient" else case.differentiable
    Probe(case, wrt).check(plant.backend(), known_ok=True)  # (no known divergence applies to an override)
