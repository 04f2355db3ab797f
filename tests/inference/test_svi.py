"""The SVI loop: objectives against closed forms, determinism, divergence, checkpoints, devices."""
import itertools

import pyro
import pytest
import torch
from pyro.infer import Trace_ELBO
from torch.distributions import MultivariateNormal, kl_divergence

import pprl
from pprl.inference.families import make_family
from pprl.inference.svi import analytic_kl_loss
from pprl.spec import parse_inference_spec
from tests.conftest import linear_system

LINEAR = {"type": "linear_gaussian", "likelihood": {"noise_scale": 0.3}}


def gaussian_q(guide):
    """q(θ) of a Gaussian guide as a torch MultivariateNormal."""
    if hasattr(guide, "locs"):
        return MultivariateNormal(guide.locs.theta, torch.diag(guide.scales.theta.square()))
    q = guide.get_posterior()
    return MultivariateNormal(q.mean, q.covariance_matrix)


def exact_negative_elbo(model, q, x, y):
    """−ELBO in closed form for the linear-Gaussian model: E_q (y − Aθ)² = (y − Aμ)² + diag(AΣAᵀ)."""
    xa = torch.cat([x, torch.ones(len(x), 1)], -1)
    k, out = xa.shape[1], model.obs_dim
    A = torch.zeros(len(x), out, k * out)
    for j in range(out):
        A[:, j, torch.arange(k) * out + j] = xa
    m, v = A @ q.mean, torch.einsum("njd,de,nje->nj", A, q.covariance_matrix, A)
    s2 = model.noise_scale.square()
    exp_ll = (-0.5 * torch.log(2 * torch.pi * s2) - ((y - m).square() + v) / (2 * s2)).sum()
    prior = MultivariateNormal(model.prior_loc, torch.diag(model.prior_scale.square()))
    return kl_divergence(q, prior) - exp_ll


@pytest.mark.parametrize("family,local", [("mean_field", True), ("mean_field", False), ("low_rank", False),
                                          ("full_rank", False)])
def test_analytic_kl_objective_matches_closed_form(family, local):
    torch.manual_seed(0)
    data = linear_system(40)
    model = pprl.build_model(LINEAR, data.obs_dim, data.act_dim)
    x, y = model.inputs(data.obs, data.act), model.targets(data.obs, data.next_obs)
    spec = parse_inference_spec({"family": family, "init_scale": 0.3,
                                 **({"options": {"rank": 3}} if family == "low_rank" else {})})
    q = make_family(spec)
    guide = q.make_guide(model)
    guide(x, y, len(x))
    with torch.no_grad():
        exact = exact_negative_elbo(model, gaussian_q(guide), x, y)
    with torch.no_grad():
        ours = analytic_kl_loss(model, q, x, y, len(x), num_particles=20000, local_reparam=local)
        pyro_mc = Trace_ELBO(num_particles=4000, vectorize_particles=True,
                             max_plate_nesting=1).differentiable_loss(model, guide, x, y, len(x))
    assert abs(float(ours - exact)) < 0.01 * abs(float(exact)), (ours, exact)
    assert abs(float(pyro_mc - exact)) < 0.02 * abs(float(exact)), (pyro_mc, exact)


def test_same_seed_same_elbo_trace():
    data = linear_system(300)
    run = lambda seed, fam: pprl.fit(LINEAR, fam, data, steps=60, seed=seed, progress=False).elbo_trace
    for family in ("mean_field", "flow"):
        a, b, c = run(1, family), run(1, family), run(2, family)
        assert torch.equal(a, b)
        assert not torch.equal(a, c)


def test_fit_leaves_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    pprl.fit(LINEAR, "map", linear_system(50), steps=5, progress=False)
    assert torch.equal(torch.rand(3), expected)


def test_minibatch_scaling_gives_unbiased_elbo():
    """With the likelihood scaled N/M, the minibatch loss averages to the full-data loss."""
    data = linear_system(200)
    model = pprl.build_model(LINEAR, data.obs_dim, data.act_dim)
    x, y = model.inputs(data.obs, data.act), model.targets(data.obs, data.next_obs)
    q = make_family(parse_inference_spec({"family": "mean_field", "init_scale": 0.2}))
    q.make_guide(model)(x, y, len(x))
    torch.manual_seed(0)
    with torch.no_grad():
        full = analytic_kl_loss(model, q, x, y, 200, num_particles=4000)
        batches = torch.stack([analytic_kl_loss(model, q, x[i:i + 20], y[i:i + 20], 200, num_particles=4000)
                               for i in range(0, 200, 20)])
    assert abs(float(batches.mean() - full)) < 0.005 * abs(float(full))
    assert batches.std() > 0  # each minibatch estimate differs; only their mean is the full loss


def test_divergence_stops_with_step_and_keeps_last_good_state(tmp_path):
    data = linear_system(100)
    with pytest.raises(pprl.FitDiverged, match=r"at step \d+") as info:
        pprl.fit(LINEAR, {"family": "mean_field", "optimizer": "sgd", "lr": 1e6, "grad_clip": None,
                          "steps": 200}, data, progress=False, out_dir=tmp_path)
    err = info.value
    assert err.step >= 1
    assert all(torch.isfinite(p).all() for p in err.posterior.guide.parameters())
    assert len(err.posterior.elbo_trace) == err.step
    saved = pprl.load_posterior(tmp_path / "checkpoint.pt")
    torch.testing.assert_close(saved.guide.locs.theta, err.posterior.guide.locs.theta)


BNN_SMALL = {"type": "bnn", "hidden_sizes": [8], "likelihood": {"learn_noise": True}}
CONSTANT_LR = {"family": "mean_field", "elbo": "analytic_kl", "lr": 0.01, "lr_decay": 1.0, "steps": 60}


def all_params(post):
    return [p.detach() for p in post.guide.parameters()] + [p.detach() for p in post.model.parameters()]


def nan_at_call(k: int, data):
    """A small BNN whose k-th likelihood forward pass (0-based: step k) returns NaN, and its call counter."""
    model = pprl.build_model(BNN_SMALL, data.obs_dim, data.act_dim)
    calls, plain = itertools.count(), model.mean_local_reparam

    def poisoned(*args, **kwargs):
        f = plain(*args, **kwargs)
        return f * float("nan") if next(calls) == k else f
    model.mean_local_reparam = poisoned
    return model, calls


@pytest.mark.parametrize("check_every", [1, 10])
def test_on_device_divergence_check_names_the_step_and_keeps_the_last_good_state(check_every):
    """A NaN injected at step 37 is reported as step 37 whether the host looks every step or every
    10 (it looks at step 39 then), and the parameters are those of a clean 37-step fit, bit for bit."""
    data = linear_system(300)
    model, calls = nan_at_call(37, data)
    with pytest.raises(pprl.FitDiverged, match=r"non-finite ELBO \(nan\) at step 37 ") as info:
        pprl.fit(model, CONSTANT_LR, data, seed=3, check_every=check_every, progress=False)
    assert next(calls) == (38 if check_every == 1 else 40)  # steps 0..37, or on to the check after step 39
    err = info.value
    assert err.step == 37 and len(err.posterior.elbo_trace) == 37
    clean = pprl.fit(BNN_SMALL, CONSTANT_LR, data, seed=3, steps=37, progress=False)
    for got, want in zip(all_params(err.posterior), all_params(clean), strict=True):
        assert torch.equal(got, want)
    assert torch.equal(err.posterior.elbo_trace, clean.elbo_trace)


def test_a_checkpoint_is_never_written_past_a_bad_step(tmp_path):
    """Checkpoints every 20 steps, the host's check every 50: the NaN at step 37 is found at the
    checkpoint after step 39, which then holds the state after step 36, not a later one."""
    data = linear_system(300)
    model, calls = nan_at_call(37, data)
    with pytest.raises(pprl.FitDiverged, match=r"at step 37 "):
        pprl.fit(model, CONSTANT_LR, data, seed=3, check_every=50, out_dir=tmp_path, checkpoint_every=20,
                 progress=False)
    assert next(calls) == 40
    saved = pprl.load_posterior(tmp_path / "checkpoint.pt")
    assert len(saved.elbo_trace) == 37 and saved.info["diverged_at"] == 37


def test_check_every_does_not_change_the_fit():
    data = linear_system(300)
    every = [pprl.fit(BNN_SMALL, CONSTANT_LR, data, seed=1, check_every=k, progress=False) for k in (1, 7)]
    for got, want in zip(all_params(every[1]), all_params(every[0]), strict=True):
        assert torch.equal(got, want)
    assert torch.equal(every[0].elbo_trace, every[1].elbo_trace)
    with pytest.raises(ValueError, match="check_every must be >= 1"):
        pprl.fit(BNN_SMALL, CONSTANT_LR, data, check_every=0, progress=False)


def test_nan_data_is_rejected():
    data = linear_system(20)
    data.next_obs[3, 0] = float("nan")
    with pytest.raises(ValueError, match="next_obs has NaN"):
        pprl.fit(LINEAR, "map", data, steps=2, progress=False)


@pytest.mark.parametrize("family", ["mean_field", "low_rank", "full_rank", "flow", "map", "laplace"])
def test_checkpoint_round_trip(tmp_path, family):
    data = linear_system(200)
    post = pprl.fit({"type": "bnn", "hidden_sizes": [8], "likelihood": {"learn_noise": True}}, family, data,
                    steps=30, progress=False)
    path = post.save(tmp_path / "post.pt")
    state = torch.load(path, weights_only=True)  # the safe loader reads it
    assert state["format"] == "pprl.posterior/1"
    loaded = pprl.load_posterior(path)
    torch.manual_seed(0)
    a = post.predict(data.obs[:7], data.act[:7], num_samples=5)
    torch.manual_seed(0)
    b = loaded.predict(data.obs[:7], data.act[:7], num_samples=5)
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(loaded.model.noise_scale, post.model.noise_scale)
    assert torch.equal(loaded.elbo_trace, post.elbo_trace)


def test_renyi_iwae_objective_fits(monkeypatch):
    calls = []
    original = pyro.infer.RenyiELBO.loss_and_grads
    monkeypatch.setattr(pyro.infer.RenyiELBO, "loss_and_grads",
                        lambda self, *a, **k: calls.append(self.alpha) or original(self, *a, **k))
    data = linear_system(300)
    post = pprl.fit(LINEAR, {"family": "low_rank", "elbo": "renyi", "alpha": 0.0, "num_particles": 8,
                             "options": {"rank": 2}, "steps": 300, "lr": 0.02}, data, progress=False)
    assert post.elbo_trace[-30:].mean() > post.elbo_trace[:10].mean()
    assert post.log_predictive(data) > post.prior_log_predictive(data) + 1.0
    assert calls == [0.0] * 300  # every step used the Rényi objective with the declared α


def test_predict_shapes_and_units():
    data = linear_system(400, noise=0.05)
    post = pprl.fit(LINEAR, "full_rank", data, steps=400, progress=False)
    samples = post.predict(data.obs[:10], data.act[:10], num_samples=50)
    assert samples.shape == (50, 10, data.obs_dim)
    # the predictive mean sits on the observed next states (up to noise 0.05)
    assert (samples.mean(0) - data.next_obs[:10]).abs().mean() < 0.1
    draws = post.sample(6)
    assert draws["theta"].shape == (6, post.model.param_dim)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fit_on_cuda(pendulum):
    train, test = pendulum
    post = pprl.fit("models/bnn_dynamics.yaml", "mean_field", train, steps=300, device="cuda", progress=False)
    assert post.device.type == "cuda"
    assert post.log_predictive(test) > post.prior_log_predictive(test) + 10.0
    with pytest.raises(ValueError, match="'cuda:99' requested but this machine has"):  # never a CPU fallback
        pprl.fit("models/bnn_dynamics.yaml", "mean_field", train, steps=2, device="cuda:99", progress=False)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_deferred_divergence_check_on_cuda():
    """On a GPU the host reads the guard every 64 steps by default; the bad step is still named."""
    data = linear_system(300)
    model, calls = nan_at_call(37, data)
    with pytest.raises(pprl.FitDiverged, match=r"at step 37 ") as info:
        pprl.fit(model, CONSTANT_LR, data, seed=3, device="cuda", progress=False)
    assert next(calls) == 60  # ran on to the check at the last step
    clean = pprl.fit(BNN_SMALL, CONSTANT_LR, data, seed=3, steps=37, device="cuda", progress=False)
    for got, want in zip(all_params(info.value.posterior), all_params(clean), strict=True):
        assert torch.equal(got, want)


def test_a_cuda_ordinal_beyond_the_devices_is_a_clear_error(monkeypatch):
    from pprl.inference.svi import _resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ValueError, match=r"'cuda:2' requested but this machine has 2 CUDA device\(s\): use cuda:0 … cuda:1"):
        _resolve_device("cuda:2")


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        pprl.fit(LINEAR, "map", linear_system(10), steps=1, device="cuda", progress=False)
