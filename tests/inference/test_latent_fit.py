"""pprl.fit on latent models (issue 15): the ELBO of a linear-Gaussian state-space model against the
Kalman filter, reparameterised vs score-function gradients against the exact gradient, sequences
cut at episode ends, metrics and image strips, seeding, checkpoints and divergence."""
import json
import math

import pytest
import torch

import pprl
from pprl.data.sequences import Sequences, split_episodes, to_sequences
from pprl.inference.latent_fit import gradient_parameters, gradient_variance
from pprl.inference.latent_posterior import LatentPosterior, load_latent_posterior
from pprl.inference.svi import FitDiverged
from pprl.models.kalman import kalman_log_likelihood
from pprl.models.latent import build_latent_model
from pprl.rl.envs.pixels import render_pendulum
from pprl.rng import seeded

pytestmark = pytest.mark.usefixtures("single_thread")

LGSSM = {"type": "latent", "observation": {"kind": "vector", "size": 3}, "latent_size": 2,
         "encoder": {"type": "linear"}, "decoder": {"type": "linear"}, "transition": {"type": "linear"},
         "likelihood": {"type": "normal", "scale": 0.5}, "sequence_length": 5}
INFERENCE = {"family": "mean_field", "lr": 0.02, "lr_decay": 0.01, "batch_size": 100}


def simulate_lgssm(n=300, T=6, seed=0):
    """n sequences of T observations of z' = A z + B a + b + N(0, 0.3²I), o = C z + d + N(0, 0.2²I), z_0 ~ N(0, I)."""
    g = torch.Generator().manual_seed(seed)
    th = 0.3
    A = 0.9 * torch.tensor([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    B, b = torch.tensor([[0.5], [0.2]]), torch.tensor([0.1, -0.1])
    C, d = torch.randn(3, 2, generator=torch.Generator().manual_seed(1)), torch.tensor([0.5, 0.0, -0.5])
    z = torch.randn(n, 2, generator=g)
    act = torch.rand(n, T - 1, 1, generator=g) * 2 - 1
    obs = []
    for t in range(T):
        obs.append(z @ C.T + d + 0.2 * torch.randn(n, 3, generator=g))
        if t < T - 1:
            z = z @ A.T + act[:, t] @ B.T + b + 0.3 * torch.randn(n, 2, generator=g)
    true = dict(A=A, B=B, b=b, Q=0.09 * torch.eye(2), C=C, d=d, R=0.04 * torch.eye(3), m0=torch.zeros(2),
                P0=torch.eye(2))
    return Sequences(torch.stack(obs, 1), act), true


def _gap(guide: str):
    data, true = simulate_lgssm()
    post = pprl.fit({**LGSSM, "guide": guide}, INFERENCE, data, steps=1000, progress=False, seed=0)
    T = data.length
    ll_fit = float(kalman_log_likelihood(data.obs, data.act, **post.model.linear_gaussian_parameters()).mean()) / T
    ll_true = float(kalman_log_likelihood(data.obs, data.act, **true).mean()) / T
    elbo = post.elbo(data, num_particles=32)
    print(f"LGSSM, {guide} guide, per observed step: Kalman log-lik at the fit {ll_fit:.4f}, at the truth "
          f"{ll_true:.4f}, ELBO {elbo:.4f}, gap {ll_fit - elbo:.4f}")
    return ll_fit, ll_true, elbo


def test_lgssm_elbo_is_a_lower_bound_on_the_kalman_likelihood_within_a_stated_gap():
    """Linear transition and decoder, Gaussian noise: log p(o | a) is the Kalman filter's. The ELBO of
    the fitted model with the smoothing guide is below it (a bound at any parameters) and within
    0.08 nats per observed step of it (what is left: the diagonal q against the correlated exact
    conditional, and a time-invariant backward recurrence); the fitted model is as likely as the truth."""
    ll_fit, ll_true, elbo = _gap("smoothing")
    assert elbo < ll_fit
    assert ll_fit - elbo < 0.08
    assert abs(ll_fit - ll_true) < 0.03


def test_filtering_guide_is_a_looser_bound_than_smoothing():
    """q(z_t | o_t, z_{t−1}, a_{t−1}) cannot see o_{t+1:T}, which the exact posterior conditions on."""
    ll_fit, _, elbo = _gap("filtering")
    assert elbo < ll_fit
    assert 0.06 < ll_fit - elbo < 0.2


# ----------------------------------------------------------------------------- gradient estimators

PPCA = {"type": "latent", "observation": {"kind": "vector", "size": 4}, "latent_size": 2,
        "encoder": {"type": "linear"}, "decoder": {"type": "linear"}, "transition": {"type": "none"},
        "likelihood": {"type": "normal", "scale": 0.5, "learn_scale": True}, "sequence_length": 0}


def exact_elbo(model, guide, x):
    """Σ_n ELBO(x_n) in closed form for the linear-Gaussian model with a linear encoder (autograd-able):
    E_q log N(x; W z + μ, σ²I) − KL(N(m, diag s²) ‖ N(0, I))."""
    loc, scale = guide.step(guide.embed(x.unsqueeze(1))[:, 0], None, None)
    W, mu, s2 = model.decoder.weight, model.decoder.bias, model.obs_scale ** 2
    D = x.shape[-1]
    rec = -D / 2 * torch.log(2 * math.pi * s2) - (((x - loc @ W.T - mu) ** 2).sum(-1)
                                                  + scale ** 2 @ (W ** 2).sum(0)) / (2 * s2)
    kl = 0.5 * (scale ** 2 + loc ** 2 - 1 - torch.log(scale ** 2)).sum(-1)
    return (rec - kl).sum()


def test_reparameterised_gradient_has_lower_variance_than_score_function_both_unbiased():
    """On a Gaussian latent model both estimators are unbiased for ∇ELBO (checked against the
    closed-form gradient within 5 standard errors per coordinate); the pathwise one has far lower
    variance than the score-function one with its learned baseline (Levine, CS 294-112)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 2, generator=g) @ torch.randn(2, 4, generator=g) + 0.5 * torch.randn(16, 4, generator=g)
    data = Sequences(x.unsqueeze(1), torch.zeros(16, 0, 0))
    # a short score-function fit: moves the model and guide away from their initial values and trains the baseline
    post = pprl.fit({**PPCA, "estimator": "score_function"}, {**INFERENCE, "lr": 0.01, "batch_size": 16}, data,
                    steps=300, progress=False, seed=0)
    model, guide = post.model, post.guide
    params = gradient_parameters(model, guide)
    loss = -exact_elbo(model, guide, x)
    exact = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, params)])
    n = 400
    stats = {e: gradient_variance(model, guide, data, e, num_samples=n, seed=1)
             for e in ("reparameterised", "score_function")}
    for name, s in stats.items():
        z = (s.mean - exact).abs() / (s.variance / n).sqrt().clamp_min(1e-6)
        print(f"{name}: total variance {s.total_variance:.4g}, max |mean - exact| / s.e. {float(z.max()):.2f}")
        assert float(z.max()) < 5, name
    assert stats["reparameterised"].total_variance < 0.1 * stats["score_function"].total_variance
    assert guide.score_function  # gradient_variance restores the guide's own estimator


# ----------------------------------------------------------------------------- sequences from transitions

def test_to_sequences_never_crosses_an_episode_end():
    obs = torch.arange(10.0).unsqueeze(1)
    nxt = obs + 1
    nxt[4] = 100.0  # an unflagged reset after row 4
    term = torch.zeros(10, dtype=torch.bool)
    term[7] = True
    t = pprl.Transitions(obs, torch.zeros(10, 1), nxt, terminated=term)
    seqs = to_sequences(t, 2)
    starts = [int(s) for s in seqs.obs[:, 0, 0]]
    assert starts == [0, 1, 2, 3, 5, 6, 8]  # windows [3, 4] ends at the reset, [5, 6, 7] at the terminal
    assert seqs.obs.shape == (7, 3, 1) and seqs.act.shape == (7, 2, 1)
    assert torch.equal(seqs.obs[3, :, 0], torch.tensor([3.0, 4.0, 100.0]))
    assert to_sequences(t, 0).length == 1 and len(to_sequences(t, 0)) == 10
    kept, held = split_episodes(t, 0.34, seed=0)
    assert len(kept) + len(held) == 10 and 0 < len(held) < 10


def pendulum_frames(n=240, size=16, seed=0):
    data = pprl.collect("Pendulum-v1", n, seed=seed)
    img = lambda o: torch.from_numpy(render_pendulum(o[:, 0].numpy(), o[:, 1].numpy(), size)).reshape(len(o), -1)  # noqa: E731
    return pprl.Transitions(img(data.obs), data.act, img(data.next_obs), data.reward, data.terminated,
                            data.truncated)


PIXELS = {"type": "latent", "observation": {"kind": "image", "shape": [1, 16, 16]}, "latent_size": 4,
          "encoder": {"type": "conv", "features": 32}, "decoder": {"type": "conv"},
          "transition": {"type": "mlp", "hidden_sizes": [32]}, "likelihood": {"type": "bernoulli"},
          "guide": "filtering", "sequence_length": 4, "free_nats": 0.5, "kl_balance": 0.8}


def test_image_model_fits_writes_metrics_and_strip_and_reloads(tmp_path):
    frames = pendulum_frames()
    train, test = frames[:200], frames[200:]
    post = pprl.fit(PIXELS, {**INFERENCE, "lr": 3e-3, "batch_size": 16}, train, steps=30, progress=False, seed=0,
                    out_dir=tmp_path, test_data=test, horizon=5)
    assert isinstance(post, LatentPosterior) and torch.isfinite(post.elbo_trace).all()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["split"] == "held_out" and len(metrics["prediction_mse"]) == 5
    assert math.isfinite(metrics["elbo_per_step"]) and metrics["reconstruction_mse"] >= 0
    assert (tmp_path / "strip.png").stat().st_size > 0
    back = load_latent_posterior(tmp_path / "posterior.pt")
    obs = test.obs[:6].reshape(1, 6, -1)
    act = test.act[:5].unsqueeze(0)
    assert torch.equal(back.encode(obs, act)[0], post.encode(obs, act)[0])
    pred = back.predict(obs[:, 0], act)
    assert pred.shape == (1, 6, 256) and ((pred >= 0) & (pred <= 1)).all()
    assert back.reconstruct(obs.reshape(1, 6, 1, 16, 16), act).shape == (1, 6, 256)


def test_seeded_same_numbers_and_global_rng_untouched():
    data, _ = simulate_lgssm(n=40)
    kw = dict(steps=20, progress=False)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = pprl.fit({**LGSSM, "guide": "filtering"}, INFERENCE, data, seed=3, **kw)
    assert torch.equal(torch.get_rng_state(), before)
    b = pprl.fit({**LGSSM, "guide": "filtering"}, INFERENCE, data, seed=3, **kw)
    c = pprl.fit({**LGSSM, "guide": "filtering"}, INFERENCE, data, seed=4, **kw)
    assert torch.equal(a.elbo_trace, b.elbo_trace) and not torch.equal(a.elbo_trace, c.elbo_trace)
    assert torch.equal(a.predict(data.obs[:2, 0], data.act[:2], sample=True, seed=1),
                       b.predict(data.obs[:2, 0], data.act[:2], sample=True, seed=1))
    a.elbo(data), gradient_variance(a.model, a.guide, data[:4], "score_function", num_samples=3)
    assert torch.equal(torch.get_rng_state(), before)


def test_non_finite_elbo_names_the_step(tmp_path):
    data, _ = simulate_lgssm(n=20)
    with seeded(0):
        model = build_latent_model(LGSSM, act_dim=1)
    with torch.no_grad():
        model.decoder.bias.fill_(float("nan"))
    with pytest.raises(FitDiverged, match="non-finite ELBO .* at step 0 ") as info:
        pprl.fit(model, INFERENCE, data, steps=5, progress=False, out_dir=tmp_path)
    assert info.value.step == 0 and (tmp_path / "checkpoint.pt").is_file()


def test_wrong_family_and_options_for_other_models_are_clear():
    data, _ = simulate_lgssm(n=20)
    with pytest.raises(pprl.SpecError, match="field 'family'.*allowed: mean_field"):
        pprl.fit(LGSSM, "full_rank", data, steps=1, progress=False)
    with pytest.raises(TypeError, match="test_data"):
        pprl.fit("linear_gaussian", "mean_field", pprl.Transitions(torch.zeros(4, 1), torch.zeros(4, 1),
                                                                      torch.zeros(4, 1)), steps=1, test_data=None)


def test_kl_balance_one_half_is_the_plain_gradient_and_free_nats_stop_the_kl_gradient():
    """α KL(sg q ‖ p) + (1 − α) KL(q ‖ sg p) has the value of KL(q ‖ p) and gives the prior (the
    transition, which only the KL term reaches) α times its plain gradient; below the free-nats
    floor the KL term contributes no gradient at all."""
    from pprl.inference.latent_fit import analytic_loss
    data, _ = simulate_lgssm(n=8)
    with seeded(0):
        model = build_latent_model({**LGSSM, "guide": "filtering"}, act_dim=1)
        guide = pprl.inference.amortised.AmortisedGuide(model.spec, 1)

    def grads(**kw):
        for p in [*model.parameters(), *guide.parameters()]:
            p.grad = None
        with seeded(1):
            loss, neg_elbo = analytic_loss(model, guide, data.obs, data.act, 8, **kw)
        loss.backward()
        prior = torch.cat([p.grad.reshape(-1) for p in [*model.transition.parameters(), model.transition_scale_raw]])
        return (float(loss), float(neg_elbo),
                torch.cat([p.grad.reshape(-1) for p in gradient_parameters(model, guide)]), prior)

    plain, balanced = grads(), grads(kl_balance=0.8)
    assert plain[0] == pytest.approx(plain[1]) and balanced[0] == pytest.approx(plain[0], rel=1e-6)
    assert torch.allclose(balanced[3], 0.8 * plain[3], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(balanced[2], plain[2], atol=1e-3)
    floor = grads(free_nats=1e6)  # every step's KL below the floor: only the reconstruction term has a gradient
    assert float(floor[3].abs().max()) == 0.0
    assert floor[1] == pytest.approx(plain[1])  # the reported ELBO is the plain one
    for p in [*model.parameters(), *guide.parameters()]:
        p.grad = None
    with seeded(1):
        from pprl.inference.latent_fit import analytic_terms
        rec = analytic_terms(model, guide, data.obs, data.act, 8).rec
    (-rec.sum()).backward()
    assert torch.allclose(floor[2], torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                                               for p in gradient_parameters(model, guide)]), atol=1e-5)


def test_load_posterior_opens_latent_checkpoints_and_rejects_junk(tmp_path):
    from pprl.inference.latent_posterior import LatentPosterior, load_latent_posterior
    from pprl.inference.posterior import load_posterior

    g = torch.Generator().manual_seed(0)
    obs = torch.randn(64, 3, generator=g)
    data = pprl.Transitions(obs=obs[:-1], act=torch.zeros(63, 1), next_obs=obs[1:])
    fitted = pprl.fit("latent_vector", {"family": "mean_field", "steps": 3, "batch_size": 4}, data, seed=0,
                      progress=False)
    path = fitted.save(tmp_path / "latent.pt")
    loaded = load_posterior(path)
    assert isinstance(loaded, LatentPosterior)
    torch.testing.assert_close(loaded.encode(obs[:5])[0], fitted.encode(obs[:5])[0])
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    for load in (load_posterior, load_latent_posterior):
        with pytest.raises(ValueError, match="not a pprl"):
            load(tmp_path / "junk.pt")
        with pytest.raises(FileNotFoundError, match="no such"):
            load(tmp_path / "missing.pt")


def test_pprl_fit_command_fits_a_latent_model_on_held_out_streams(tmp_path, capsys):
    from pprl.cli import main
    from pprl.data.sequences import split_held_out

    data = pprl.collect("Pendulum-v1", 800, seed=0, num_envs=4)
    kept, held = split_held_out(data, 0.25)
    assert (len(kept), len(held)) == (600, 200) and (kept.meta["num_envs"], held.meta["num_envs"]) == (3, 1)
    torch.testing.assert_close(held.obs, data.obs[3::4])  # the last env's stream, whole and in order
    path = tmp_path / "pend.npz"
    data.save(path)
    out = tmp_path / "fit"
    assert main(["fit", "latent_vector", "mean_field", "--data", str(path), "--steps", "20", "-o", str(out),
                 "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["split"] == "held_out" and len(metrics["prediction_mse"]) == 10
    assert isinstance(pprl.inference.posterior.load_posterior(out / "posterior.pt"), LatentPosterior)
    capsys.readouterr()
    wrong = tmp_path / "wrong.npz"
    pprl.collect("MountainCarContinuous-v0", 64, seed=0).save(wrong)  # 2-D observations, the model wants 3
    assert main(["fit", "latent_vector", "mean_field", "--data", str(wrong), "--steps", "2", "-o",
                 str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "latent_vector" in err[0]
