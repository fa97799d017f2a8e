"""The conformance plugin, end to end through ``pytester`` subprocess runs: options, selection,
backend errors, the report header, and that it stays out of unrelated pytest runs."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_unrelated_run_imports_nothing_heavy(pytester: pytest.Pytester) -> None:
    """With the plugin installed, a user's own tests run as before and pay for no torch/SymPy import."""
    pytester.makepyfile(
        test_user="""
        import sys

        def test_light():
            assert "torch" not in sys.modules
            assert "sympy" not in sys.modules
        """
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    assert "conformance:" not in result.stdout.str()


def test_cuda_without_cuda_is_a_usage_error(pytester: pytest.Pytester) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the usage error cannot be provoked")
    result = _run(pytester, "--pyargs", "conformance", "--backend=torch-cuda")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--backend=torch-cuda cannot run here*CUDA*"])
    result.stdout.no_fnmatch_line("*passed*")


def test_unknown_backend_names_the_choices(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--pyargs", "conformance", "--backend=tensorflow")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--backend='tensorflow': unknown backend; expected one of*torch-cpu*torch-cuda*"]
    )


def test_unknown_loss_names_the_choices(pytester: pytest.Pytester) -> None:
    result = _run(pytester, "--pyargs", "conformance", "--loss=cross_entropyy")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "--loss: unknown loss name(s) ['cross_entropyy']; expected any of" in err
    assert "'binary_cross_entropy'" in err


def test_loss_selects_by_exact_name(pytester: pytest.Pytester) -> None:
    """--loss=cross_entropy selects both cross_entropy variants and not binary_cross_entropy."""
    result = _run(pytester, "--pyargs", "conformance", "--loss=cross_entropy", "--collect-only", "-q")
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.OK
    assert "test_value[cross_entropy-class_index-float32]" in out
    assert "test_value[cross_entropy-probabilities-float64]" in out
    assert "binary_cross_entropy" not in out
    assert "mse_loss" not in out


def test_header_and_a_real_run_from_any_directory(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pytest --pyargs conformance`` from an unrelated directory runs the suite; the header names the
    backend, device, versions, profile and seed."""
    monkeypatch.delenv("CI", raising=False)  # the randomised profile (CI would load 'ci')
    result = _run(pytester, "--pyargs", "conformance", "--loss=mse_loss", "--hypothesis-seed=7")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "conformance: backend torch-cpu (device cpu, torch *); numpy *, sympy *",
            "conformance: hypothesis profile * seed 7; replay with --hypothesis-seed=7*",
        ]
    )


def test_ci_profile_is_derandomised(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    result = _run(pytester, "--pyargs", "conformance", "--loss=l1_loss", "--collect-only")
    result.stdout.fnmatch_lines(["conformance: hypothesis profile 'ci' (max_examples *, derandomized)*"])


def test_backend_option_taken_by_another_plugin(pytester: pytest.Pytester) -> None:
    """If another plugin owns --backend, ours still registers --conformance-backend and nothing breaks."""
    pytester.makeconftest(
        """
        def pytest_addoption(parser):
            parser.addoption("--backend", default="theirs")
        """
    )
    pytester.makepyfile(test_user="def test_ok(): pass")
    result = _run(pytester, "--backend=x")
    result.assert_outcomes(passed=1)
