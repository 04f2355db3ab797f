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


@pytest.fixture(scope="module")
def cpu_compiler():
    """Skip where torch.compile cannot build CPU kernels here (no C++ toolchain or headers)."""
    if shutil.which("g++") is None and shutil.which("c++") is None:
        pytest.skip("torch.compile on the CPU needs a C++ compiler")
    try:
        torch.compile(lambda t: (t * 2).sin().sum())(torch.ones(3, requires_grad=True)).backward()
    except Exception as exc:  # noqa: BLE001 - any failure of the toolchain probe means: cannot test here
        pytest.skip(f"torch.compile does not work on this machine: {type(exc).__name__}")


def _compile_fallbacks(record) -> list:
    return [w for w in record if "torch.compile of" in str(w.message)]


def test_compiled_fit_reaches_the_exact_mean_field_optimum(cpu_compiler):
    """Mean field on a linear-Gaussian model: the optimum has the exact mean and variances
    1/diag(Λ) (as tests/inference/test_conjugate.py checks for the plain step). The compiled step
    must get there too, through a compiled graph (dynamo's count of graphs rises) and without
    falling back; a second fit with another data size reuses the graph (the size is not in it)."""
    from torch._dynamo.utils import counters

    model, train, exact = _problem()
    spec = {"family": "mean_field", "elbo": "analytic_kl", "compile": True, **SETTINGS, "steps": 1000}
    graphs = counters["stats"]["unique_graphs"]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        post = pprl.fit(model, spec, train, seed=0, progress=False)
    assert not _compile_fallbacks(record) and counters["stats"]["unique_graphs"] > graphs
    loc, scale = post.guide.locs.theta.detach(), post.guide.scales.theta.detach()
    exact_sd = exact.covariance_matrix.diagonal().sqrt()
    torch.testing.assert_close(loc, exact.mean, rtol=0.1, atol=0.1 * float(exact_sd.mean()))
    torch.testing.assert_close(scale.square(), 1 / exact.precision_matrix.diagonal(), rtol=0.1, atol=0.0)
    assert torch.isfinite(post.elbo_trace).all()
    graphs = counters["stats"]["unique_graphs"]
    more = linear_system(80, seed=3)  # N = 80, minibatches of the same 64 rows
    model2 = pprl.build_model(MODEL, more.obs_dim, more.act_dim)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        pprl.fit(model2, {**spec, "steps": 20}, more, seed=0, progress=False)
    assert not _compile_fallbacks(record) and counters["stats"]["unique_graphs"] == graphs


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

    from torch._inductor.exc import InvalidCxxCompiler

    def broken(fn, **kw):
        def fail(*args):
            raise InvalidCxxCompiler()
        return fail
    monkeypatch.setattr(torch, "compile", broken)
    model2, _, _ = _problem()
    with pytest.warns(RuntimeWarning, match=r"torch.compile of the SVI step failed \(InvalidCxxCompiler: "):
        fallback = pprl.fit(model2, {**spec, "compile": True}, train, seed=0, progress=False)
    assert torch.equal(fallback.elbo_trace, plain.elbo_trace)
    assert torch.equal(fallback.guide.locs.theta, plain.guide.locs.theta)


def test_a_backward_pass_that_fails_to_compile_also_falls_back(monkeypatch):
    """torch builds the backward graph lazily, at the first backward(): a failure there warns too,
    and the fit runs on with the plain step (the failed first forward pass has drawn its random
    numbers, so this fit is not the plain one bit for bit)."""
    from torch._inductor.exc import InvalidCxxCompiler

    class FailsBackward(torch.autograd.Function):
        @staticmethod
        def forward(ctx, t):
            return t.clone()

        @staticmethod
        def backward(ctx, grad):
            raise InvalidCxxCompiler()

    def lazily_broken(fn, **kw):
        def call(*args):
            kl, log_lik = fn(*args)
            return FailsBackward.apply(kl), log_lik
        return call
    monkeypatch.setattr(torch, "compile", lazily_broken)
    model, train, _ = _problem()
    spec = {"family": "mean_field", "elbo": "analytic_kl", "compile": True, **SETTINGS, "steps": 30}
    with pytest.warns(RuntimeWarning, match="torch.compile of the SVI step failed"):
        post = pprl.fit(model, spec, train, seed=0, progress=False)
    assert len(post.elbo_trace) == 30 and torch.isfinite(post.elbo_trace).all()


def test_an_error_of_the_step_itself_is_not_taken_for_a_compile_failure(monkeypatch):
    """Only compilation errors fall back; any other error of the first step is raised as it is."""
    model, train, _ = _problem()

    def broken(fn, **kw):
        def fail(*args):
            raise ValueError("a bug in the step")
        return fail
    monkeypatch.setattr(torch, "compile", broken)
    spec = {"family": "mean_field", "elbo": "analytic_kl", "compile": True, **SETTINGS, "steps": 3}
    with pytest.raises(ValueError, match="a bug in the step"):
        pprl.fit(model, spec, train, seed=0, progress=False)


def test_compile_is_refused_where_it_does_not_apply():
    with pytest.raises(SpecError, match="field 'compile'.*needs elbo 'analytic_kl'.*got family 'mean_field' with elbo 'plain'"):
        parse_inference_spec({"family": "mean_field", "elbo": "plain", "compile": True}, "i.yaml")
    with pytest.raises(SpecError, match="which families mean_field, .* have; got family 'map'"):
        parse_inference_spec({"family": "map", "compile": True}, "i.yaml")
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
