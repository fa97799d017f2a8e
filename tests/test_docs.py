"""The generated derivation docs (``python -m spec.docs``): current with the specs, every math
fragment parsed by MathJax, deterministic plots, the stable forms' counterexamples measured."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
import sympy as sp

from spec import OTHER_LOSSES, REGISTRY
from spec.docs import OUT, build, derivation, plots, stable
from spec.docs.compare import differences, png_text
from spec.docs.mathcheck import errors, fragments, node_ready
from spec.docs.notation import rst_to_markdown

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def generated() -> dict[str, bytes]:
    return build()


def _pages(generated: dict[str, bytes]) -> dict[str, str]:
    return {k: v.decode() for k, v in generated.items() if k.endswith(".md")}


def test_committed_docs_are_what_the_specs_give(generated: dict[str, bytes]) -> None:
    diff = differences(OUT / "losses", generated)
    assert not diff, f"docs/losses is stale, run `python -m spec.docs`: {diff}"


def test_a_page_per_loss_an_index_and_links(generated: dict[str, bytes]) -> None:
    pages = _pages(generated)
    for name in [*REGISTRY, *OTHER_LOSSES]:
        page = pages[f"{name}.md"]
        assert "../error-model.md" in page, f"{name}: the error model page is linked"
        assert f"({name}.md)" in pages["README.md"], f"{name} is in the index"
    for name, loss in REGISTRY.items():
        for v in loss.variants:
            if plots.view(v) is not None:
                png = f"plots/{v.key.replace('[', '-').replace(']', '')}.png"
                assert png in generated and f"]({png})" in pages[f"{name}.md"]


def test_no_rest_leftovers_and_names_typeset(generated: dict[str, bytes]) -> None:
    names = {a.name for loss in REGISTRY.values() for v in loss.variants for a in (*v.args, *v.params)}
    underscored = sorted(n for n in names if "_" in n)
    for rel, page in _pages(generated).items():
        prose = re.sub(r"`[^`\n]*`", "", page)
        assert ".. math::" not in page and "``" not in page and ":func:" not in prose, rel
        for tex, _ in fragments(page):
            for n in underscored:  # as a subscript: label_smoothing would print label_{s}moothing
                assert n not in tex, f"{rel}: raw {n!r} in {tex[:80]!r}"
            assert not re.search(r"(?<![.\d])\d{10,}", tex), (
                f"{rel}: a long integer (an exact rational?) in {tex[:120]!r}"
            )


def test_rst_to_markdown() -> None:
    doc = "Sum.\n\n.. math:: a = b\n          + c\n\nUse ``x`` and :func:`spec.f` and :math:`y`."
    assert rst_to_markdown(doc) == "Sum.\n\n$$\na = b + c\n$$\n\nUse `x` and `spec.f` and $y$."


def test_divergences_are_on_their_loss_pages(generated: dict[str, bytes]) -> None:
    from conformance.divergences import DIVERGENCES

    pages = _pages(generated)
    for d in DIVERGENCES:
        assert f"`{d.id}`" in pages[f"{d.loss}.md"], d.id


def test_fragments() -> None:
    md = "a $x_1$ and `$not$` b\n\n$$\n\\frac{1}{2}\n$$\n\n- $y$"
    assert fragments(md) == [("x_1", False), ("\\frac{1}{2}", True), ("y", False)]
    with pytest.raises(ValueError, match="never closed"):
        fragments("$$\nx")


def _mathjax() -> None:
    why = node_ready()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must check the docs' math: {why}")
        pytest.skip(why)


def test_every_math_fragment_parses_in_mathjax(generated: dict[str, bytes]) -> None:
    _mathjax()
    items = [(rel, tex, d) for rel, page in _pages(generated).items() for tex, d in fragments(page)]
    assert len(items) > 500
    bad = errors([(t, d) for _, t, d in items])
    assert not bad, [(items[i][0], msg, items[i][1][:100]) for i, msg in bad[:10]]


def test_mathjax_rejects_what_does_not_parse() -> None:
    _mathjax()
    got = errors(
        [("\\frac{a}{b}", True), ("\\root{x}", False), ("{x", False), ("a_b_c", False), ("\\foo", True)]
    )
    assert [i for i, _ in got] == [1, 2, 3, 4]


def test_plots_are_deterministic_and_carry_no_metadata() -> None:
    v = REGISTRY["smooth_l1_loss"].variants[0]
    a = plots.png(v, "t", "$x$", r"$\ell$", r"$\partial\ell/\partial x$")
    b = plots.png(v, "t", "$x$", r"$\ell$", r"$\partial\ell/\partial x$")
    assert a is not None and a == b
    assert png_text(a) == [], "no text chunk (software, date) in the PNG"


def test_plot_values_are_the_oracles() -> None:
    """The smooth_l1 curves at β = 1: ½x² inside |x| < 1, |x| - ½ outside (y = 0)."""
    v = REGISTRY["smooth_l1_loss"].variants[0]
    vw = plots.view(v)
    assert vw is not None
    (_, value, grad) = next(c for c in plots.evaluate(v, vw) if "= 1$" in c[0])
    x = vw.xs
    np.testing.assert_allclose(value, np.where(np.abs(x) < 1, 0.5 * x * x, np.abs(x) - 0.5), rtol=1e-15)
    np.testing.assert_allclose(grad, np.clip(x, -1, 1), rtol=1e-15)


def test_stable_counterexamples_are_measured() -> None:
    """Each stable node's stated counterexample: the naive form is wrong there in float64 and the
    oracle's lowering is within 4 ulp of the exact value."""
    from oracle._stable import NODES

    got = stable.nodes()
    assert {n.name for n in got} == {c.__name__ for c in NODES}
    for n in got:
        assert stable.fails(n), f"{n.name}: the naive form does not fail at {n.at}"
        assert abs(n.oracle - n.exact) <= 4 * np.spacing(abs(n.exact)), (n.name, n.oracle, n.exact)


def test_simplified_gradients_equal_sympys() -> None:
    """The simplified form printed beside SymPy's derivative is equal to it (element-wise
    variants, at random points inside each domain)."""
    rng = np.random.default_rng(0)
    for loss in REGISTRY.values():
        for v in loss.variants:
            if v.sample_axis is not None:
                continue
            for name in v.differentiable:
                g = derivation.gradient(v, name)
                diff = g.simplified - g.sympy
                for _ in range(5):
                    point = {}
                    for a in v.args:
                        lo, hi = {"unit": (0.05, 0.95), "sign": (1, 1)}.get(a.domain.kind, (0.1, 3.0))
                        point[v.symbols[a.name]] = float(rng.uniform(lo, hi))
                    for p in v.params:
                        s = v.symbols[p.name]
                        point[s] = p.default if p.kind != "real" else float(p.default) or 0.5
                    val = complex(sp.N(diff.subs(point)))
                    assert abs(val) < 1e-12, (v.key, name, point, val)
