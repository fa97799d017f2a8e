"""``--impl NAME=module:attribute``: a user's function or nn.Module checked in place of the
backend's loss, through pytester subprocess runs from a directory holding the user's file."""

from __future__ import annotations

import pytest

CUSTOM_MSE = """
import torch
from torch import nn


class Custom_MSE(nn.Module):  # the seed tutorial's module: no reduction, no weight
    def __init__(self):
        super().__init__()

    def forward(self, predictions, target):
        return torch.mean(torch.square(predictions - target))


def mse_missing_factor_two(input, target, size_average=None, reduce=None, reduction="mean", weight=None):
    return 0.5 * torch.nn.functional.mse_loss(input, target, reduction=reduction, weight=weight)


not_callable = 42


class ForwardOnly(nn.Module):  # the most common shape: no __init__ of its own
    def forward(self, input, target):
        return (input - target).abs().mean()


class WithReduction(nn.Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return torch.nn.functional.l1_loss(input, target, reduction=self.reduction)


class PassesKeywordsOn(WithReduction):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)


class SubclassOfTorchs(nn.L1Loss):
    def forward(self, input, target):
        return torch.nn.functional.l1_loss(input, target, reduction=self.reduction)
"""


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    pytester.makepyfile(user_losses=CUSTOM_MSE)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", "--pyargs", "conformance", *args)


def test_module_impl_from_the_current_directory_passes(pytester: pytest.Pytester) -> None:
    """An nn.Module subclass in the user's own (uninstalled) file; the options it lacks are reported."""
    result = _run(pytester, "--loss=mse_loss", "--impl=mse_loss=user_losses:Custom_MSE", "-rs")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    # torch's known divergences of mse_loss are checked on the replacement as ordinary cases: the
    # weighted ones need the weight Custom_MSE does not take
    result.stdout.fnmatch_lines(
        [
            "*the implementation of mse_loss does not take 'weight' "
            "(not a parameter of Custom_MSE.__init__): left unchecked*"
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "conformance: --impl mse_loss=user_losses:Custom_MSE; options left at their defaults "
            "(unchecked): reduction (not a parameter of Custom_MSE.__init__); "
            "weight (not a parameter of Custom_MSE.__init__)"
        ]
    )


def test_wrong_function_impl_fails_with_a_reproduction(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        "--loss=mse_loss",
        "--impl=mse_loss=user_losses:mse_missing_factor_two",
        "-k",
        "test_value and float64",
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    out = result.stdout.str()
    assert "mse_loss (default) does not conform on torch-cpu+mse_loss=mse_missing_factor_two" in out
    assert "impl={'mse_loss': 'user_losses:mse_missing_factor_two'}" in out


@pytest.mark.parametrize(
    ("impl", "says"),
    [
        ("mse_loss", "expected NAME=package.module:attribute"),
        ("mse_los=user_losses:Custom_MSE", "unknown loss 'mse_los'; expected one of"),
        ("mse_loss=no_such_module:f", "--impl 'mse_loss=no_such_module:f': cannot import 'no_such_module'"),
        ("mse_loss=user_losses:missing", "has no attribute 'missing'"),
        ("mse_loss=user_losses:not_callable", "neither callable nor an nn.Module subclass"),
    ],
)
def test_bad_impl_is_a_usage_error(pytester: pytest.Pytester, impl: str, says: str) -> None:
    result = _run(pytester, "--loss=mse_loss", f"--impl={impl}", "--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert says in result.stderr.str(), result.stderr.str()


def test_forward_only_module_passes_with_its_options_unchecked(pytester: pytest.Pytester) -> None:
    """A module with only ``forward`` inherits ``nn.Module.__init__(*args, **kwargs)``, which takes no
    option at all: it is built with none, and every option is reported as unchecked."""
    result = _run(pytester, "--loss=l1_loss", "--impl=l1_loss=user_losses:ForwardOnly")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "conformance: --impl l1_loss=user_losses:ForwardOnly; options left at their defaults "
            "(unchecked): reduction (not a constructor argument of ForwardOnly (it has no __init__ of "
            "its own)); weight (*"
        ]
    )


def test_module_options_are_read_up_the_mro_to_nn_module() -> None:
    """Each shape of module in CUSTOM_MSE, executed here: the options its constructor really takes."""
    from conformance.impl import module_options

    ns: dict[str, object] = {}
    exec(CUSTOM_MSE, ns)
    takes = {
        name: set(module_options(ns[name])[0])
        for name in ("ForwardOnly", "WithReduction", "PassesKeywordsOn", "SubclassOfTorchs", "Custom_MSE")  # type: ignore[arg-type]
    }
    assert takes == {
        "ForwardOnly": set(),
        "WithReduction": {"reduction"},
        "PassesKeywordsOn": {"reduction"},
        "SubclassOfTorchs": {"size_average", "reduce", "reduction"},
        "Custom_MSE": set(),
    }


RANKING = """
import torch
from torch import nn


class Ranking(nn.Module):  # three tensors to forward, the margin to the constructor
    def __init__(self, margin=0.0, reduction="mean"):
        super().__init__()
        self.margin, self.reduction = margin, reduction

    def forward(self, input1, input2, target):
        e = (-target * (input1 - input2) + self.margin).clamp_min(0)
        return e if self.reduction == "none" else e.sum() if self.reduction == "sum" else e.mean()
"""


def test_module_with_three_tensors_passes(pytester: pytest.Pytester) -> None:
    """An nn.Module of a three-tensor loss (margin_ranking_loss) gets its tensors positionally, in
    torch.nn.functional order, and its options through the constructor."""
    pytester.makepyfile(ranking=RANKING)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--pyargs", "conformance", "--loss=margin_ranking_loss",
        "--impl=margin_ranking_loss=ranking:Ranking",
    )  # fmt: skip
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(["*--impl margin_ranking_loss=ranking:Ranking*unchecked): none*"])
