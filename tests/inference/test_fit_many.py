"""fit(num_runs=R) / fit_many: R fits in one vectorised loop equal R separate fits."""
import pytest
import torch

import pprl
from pprl.inference.fit_many import fit_many
from tests.conftest import linear_system

BNN = {"type": "bnn", "hidden_sizes": [16], "likelihood": {"learn_noise": True}}


def all_params(post):
    return [p.detach() for p in post.guide.parameters()] + [p.detach() for p in post.model.parameters()]


def assert_same_fit(got, want, tol=1e-5):
    for a, b in zip(all_params(got), all_params(want), strict=True):
        torch.testing.assert_close(a, b, atol=tol, rtol=tol)
    torch.testing.assert_close(got.elbo_trace, want.elbo_trace, atol=tol, rtol=tol)


@pytest.mark.parametrize("family,extra", [
    ("mean_field", {}),  # the local reparameterisation
    ("mean_field", {"options": {"local_reparam": False}, "num_particles": 2}),
    ("low_rank", {"options": {"rank": 3}}),
    ("full_rank", {}),
])
def test_num_runs_equals_separate_fits_with_the_same_seeds(family, extra):
    """Same initial values, minibatches, noise, clipping and Adam path per run. After 50 steps the
    runs agree to float rounding (the batched products round differently; over hundreds of steps
    Adam amplifies that on near-zero gradients, as between any two float32 runs)."""
    data = linear_system(300)
    spec = {"family": family, "elbo": "analytic_kl", "steps": 50, "batch_size": 64, **extra}
    many = pprl.fit(BNN, spec, data, seed=5, num_runs=3, progress=False)
    assert [p.info["seed"] for p in many] == [5, 6, 7] and [p.info["run"] for p in many] == [0, 1, 2]
    for r, got in enumerate(many):
        assert_same_fit(got, pprl.fit(BNN, spec, data, seed=5 + r, progress=False))
    # independent runs: different seeds give different posteriors
    assert (many[0].mean_theta() - many[1].mean_theta()).abs().max() > 1e-2


@pytest.mark.parametrize("model", [
    {"type": "linear_gaussian", "likelihood": {"noise_scale": 0.3}},  # no learned parameter in the model
    {"type": "bnn", "hidden_sizes": [8], "likelihood": {"type": "student_t", "df": 4.0, "learn_noise": True}},
])
def test_other_models_and_likelihoods(model):
    data = linear_system(200)
    spec = {"family": "low_rank", "steps": 30, "batch_size": 50, "options": {"rank": 2}}
    many = pprl.fit(model, spec, data, seed=2, num_runs=2, progress=False)
    for r, got in enumerate(many):
        assert_same_fit(got, pprl.fit(model, spec, data, seed=2 + r, progress=False))


def test_one_data_set_per_run():
    sets = [linear_system(200, seed=s) for s in (0, 1)]
    spec = {"family": "mean_field", "steps": 40, "batch_size": 50}
    many = fit_many(BNN, spec, sets, seeds=[3, 3], progress=False)
    for got, data in zip(many, sets):
        assert_same_fit(got, pprl.fit(BNN, spec, data, seed=3, progress=False))
        torch.testing.assert_close(got.model.input_norm.mean, pprl.build_model(BNN, 2, 1).fit_normalizer(data).input_norm.mean)


def test_a_built_model_is_copied_per_run_and_left_alone():
    data = linear_system(100)
    model = pprl.build_model(BNN, data.obs_dim, data.act_dim)
    before = [b.clone() for b in model.buffers()]
    many = pprl.fit(model, "mean_field", data, steps=5, num_runs=2, progress=False)
    assert many[0].model is not many[1].model and many[0].model is not model
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers()))


def test_a_diverging_run_stops_all_and_is_named():
    """A NaN in run 1 at step 7 stops the batch with run 1 and step 7 named; every run keeps the
    state after step 6 (checked against clean 7-step fits of both runs)."""
    data = linear_system(300)
    spec = {"family": "mean_field", "elbo": "analytic_kl", "steps": 30, "batch_size": 64, "lr_decay": 1.0}
    model = pprl.build_model(BNN, data.obs_dim, data.act_dim)
    plain, calls = model.mean_local_reparam, iter(range(1000))

    def poisoned(*args, **kwargs):
        f = plain(*args, **kwargs)
        if next(calls) == 7:
            run = torch.arange(f.shape[0]).view(-1, *[1] * (f.dim() - 1))
            f = torch.where(run == 1, float("nan"), f)
        return f
    model.mean_local_reparam = poisoned
    with pytest.raises(pprl.FitDiverged, match=r"at step 7 .* run\(s\) \[1\] \(seeds \[1\]\)") as info:
        fit_many(model, spec, data, seeds=[0, 1], check_every=5, progress=False)
    err = info.value
    assert err.step == 7 and err.runs == [1] and err.posterior is None and len(err.posteriors) == 2
    assert all(len(p.elbo_trace) == 7 for p in err.posteriors)
    for r in (0, 1):
        assert_same_fit(err.posteriors[r], pprl.fit(BNN, spec, data, seed=r, steps=7, progress=False))


def test_an_overflowing_update_is_not_called_a_good_state():
    data = linear_system(100)
    spec = {"family": "mean_field", "optimizer": "sgd", "lr": 1e37, "grad_clip": None, "steps": 20}
    with pytest.raises(pprl.FitDiverged, match=r"run\(s\) \[0, 1\] overflowed their parameters") as info:
        fit_many(BNN, spec, data, seeds=[0, 1], progress=False)
    assert info.value.posteriors == [None, None]


def test_bad_requests_are_refused():
    data = linear_system(100)
    with pytest.raises(ValueError, match="fit_many fits the families mean_field, low_rank, full_rank; got family 'flow'"):
        pprl.fit(BNN, "flow", data, num_runs=2, progress=False)
    with pytest.raises(ValueError, match="analytic-KL ELBO"):
        pprl.fit(BNN, {"family": "mean_field", "elbo": "plain"}, data, num_runs=2, progress=False)
    with pytest.raises(ValueError, match="one shape"):
        fit_many(BNN, "mean_field", [data, linear_system(90)], seeds=[0, 1], progress=False)
    with pytest.raises(ValueError, match="2 data sets for 3 seeds"):
        fit_many(BNN, "mean_field", [data, data], seeds=[0, 1, 2], progress=False)
    with pytest.raises(ValueError, match="num_runs must be >= 1"):
        pprl.fit(BNN, "mean_field", data, num_runs=0, progress=False)
    with pytest.raises(ValueError, match="neither init, out_dir"):
        pprl.fit(BNN, "mean_field", data, num_runs=2, out_dir="x", progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_num_runs_on_cuda_equals_separate_fits():
    """On a GPU the loop reads the device every 64 steps; the runs still follow their own fits."""
    data = linear_system(300)
    spec = {"family": "mean_field", "elbo": "analytic_kl", "steps": 50, "batch_size": 64}
    many = pprl.fit(BNN, spec, data, seed=5, num_runs=3, device="cuda", progress=False)
    for r, got in enumerate(many):
        assert_same_fit(got, pprl.fit(BNN, spec, data, seed=5 + r, device="cuda", progress=False), tol=1e-4)
