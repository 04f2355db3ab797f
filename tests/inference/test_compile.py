"""``compile: true``: the analytic-KL SVI step through torch.compile (issue 18 item 1). On the CPU
the compiled fit reaches the exact posterior as the plain one does; a step that fails to compile
warns and falls back to the plain step; the option is refused where it does not apply."""
import shutil
import warnings

import pytest
import torch

import pprl
from pprl.spec import SpecError, parse_inference_spec
from tests.conftest import linear_system
from tests.inference.test_conjugate import MODEL, SETTINGS

pytestmark = pytest.mark.usefixtures("single_thread")


def _problem():
    train = linear_system(64, seed=1)
    model = pprl.build_model(MODEL, train.obs_dim, train.act_dim)
    model.fit_normalizer(train)
    return model, train, model.exact_posterior(train)


@pytest.mark.skipif(shutil.which("g++") is None and shutil.which("c++") is None,
                    reason="torch.compile on the CPU needs a C++ compiler")
def test_compiled_fit_reaches_the_exact_mean_field_optimum():
    """Mean field on a linear-Gaussian model: the optimum has the exact mean and variances
    1/diag(Λ) (as tests/inference/test_conjugate.py checks for the plain step). The compiled step
    must get there too, without falling back, and repeat itself under the same seed."""
    model, train, exact = _problem()
    spec = {"family": "mean_field", "elbo": "analytic_kl", "compile": True, **SETTINGS, "steps": 1000}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback would be a RuntimeWarning
        post = pprl.fit(model, spec, train, seed=0, progress=False)
    loc, scale = post.guide.locs.theta.detach(), post.guide.scales.theta.detach()
    exact_sd = exact.covariance_matrix.diagonal().sqrt()
    torch.testing.assert_close(loc, exact.mean, rtol=0.1, atol=0.1 * float(exact_sd.mean()))
    torch.testing.assert_close(scale.square(), 1 / exact.precision_matrix.diagonal(), rtol=0.1, atol=0.0)
    assert torch.isfinite(post.elbo_trace).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_compiled_fit_reaches_the_exact_mean_field_optimum():
    """The same on a GPU, where the step is captured as a CUDA graph (mode reduce-overhead)."""
    model, train, exact = _problem()
    spec = {"family": "mean_field", "elbo": "analytic_kl", "compile": True, **SETTINGS, "steps": 1000}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        post = pprl.fit(model, spec, train, seed=0, progress=False, device="cuda")
    loc, scale = post.guide.locs.theta.detach().cpu(), post.guide.scales.theta.detach().cpu()
    exact_sd = exact.covariance_matrix.diagonal().sqrt()
    torch.testing.assert_close(loc, exact.mean, rtol=0.1, atol=0.1 * float(exact_sd.mean()))
    torch.testing.assert_close(scale.square(), 1 / exact.precision_matrix.diagonal(), rtol=0.1, atol=0.0)


def test_a_step_that_fails_to_compile_warns_and_runs_plain(monkeypatch):
    """The fallback is the plain step itself: the fit equals the uncompiled one bit for bit."""
    model, train, _ = _problem()
    spec = {"family": "mean_field", "elbo": "analytic_kl", **SETTINGS, "steps": 30}
    plain = pprl.fit(model, spec, train, seed=0, progress=False)

    def broken(fn, **kw):
        def fail(*args):
            raise RuntimeError("no backend here\nsecond line")
        return fail
    monkeypatch.setattr(torch, "compile", broken)
    model2, _, _ = _problem()
    with pytest.warns(RuntimeWarning, match=r"torch.compile of the SVI step failed \(RuntimeError: no backend here\)"):
        fallback = pprl.fit(model2, {**spec, "compile": True}, train, seed=0, progress=False)
    assert torch.equal(fallback.elbo_trace, plain.elbo_trace)
    assert torch.equal(fallback.guide.locs.theta, plain.guide.locs.theta)


def test_compile_is_refused_where_it_does_not_apply():
    with pytest.raises(SpecError, match="field 'compile'.*needs elbo 'analytic_kl', got 'plain'"):
        parse_inference_spec({"family": "mean_field", "elbo": "plain", "compile": True}, "i.yaml")
    with pytest.raises(SpecError, match="field 'compile' must be"):
        parse_inference_spec({"family": "mean_field", "compile": "yes"}, "i.yaml")
    spec = parse_inference_spec({"family": "mean_field", "compile": True}, "i.yaml")
    assert spec.compile and parse_inference_spec(spec.to_dict(), "i.yaml") == spec
    assert "compile" not in parse_inference_spec({"family": "mean_field"}).to_dict()
    from pprl.inference.fit_many import batchable
    assert "does not compile" in batchable(spec)
    latent = {"type": "latent", "observation": {"kind": "vector", "size": 3}, "latent_size": 2}
    data = linear_system(20)
    with pytest.raises(SpecError, match="field 'compile' applies to dynamics models"):
        pprl.fit(latent, {"family": "mean_field", "compile": True}, data, steps=1, progress=False)
