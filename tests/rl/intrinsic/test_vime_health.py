"""VIME's dynamics posterior follows the data: bounded information gain and a pool ELBO that does
not collapse on a stream whose state range widens tenfold; the update solvers stay finite and
grow with surprise; the demo keeps its information gain below the sanity bound (slow)."""
import dataclasses
import warnings

import pandas as pd
import pytest
import torch

import pprl
from pprl.inference.info_gain import InfoGain
from pprl.inference.posterior import Posterior
from pprl.rl.experiment import load_experiment
from pprl.rl.intrinsic import VIME, VIMEHealthWarning, VIMESpec
from pprl.spec import as_model_spec

pytestmark = pytest.mark.usefixtures("single_thread")

MAX_INFO_GAIN = 10.0   # nats per transition, batch mean: the band for the synthetic streams
MAX_ELBO_DROP = 1.0    # nats per transition between consecutive refits: likewise


def widening_stream(batches: int = 10, size: int = 256, seed: int = 0) -> list[pprl.Transitions]:
    """s' = A s + B a + c + ε with the state range growing geometrically from 1 to 10 over the run."""
    g = torch.Generator().manual_seed(seed)
    A = torch.tensor([[0.9, 0.2], [-0.1, 0.8]])
    B, c = torch.tensor([[0.3, -0.5]]), torch.tensor([0.5, -0.2])
    out = []
    for i in range(batches):
        scale = 10 ** (i / (batches - 1))
        obs = (torch.rand(size, 2, generator=g) * 2 - 1) * scale
        act = torch.rand(size, 1, generator=g) * 2 - 1
        nxt = obs @ A.T + act @ B + c + 0.05 * torch.randn(size, 2, generator=g)
        z = torch.zeros(size)
        out.append(pprl.Transitions(obs, act, nxt, z, z.bool(), z.bool()))
    return out


def run_stream(monkeypatch, frozen: bool = False):
    """Feed the stream through VIME; per batch: mean info gain, pool ELBO per transition after the
    refit, and the RMS of the normalised targets of the pool."""
    if frozen:  # the old behaviour: normalisation fixed by the first batch
        monkeypatch.setattr(Posterior, "renormalize", lambda self, data: self)
    spec = load_experiment({
        "env": "pprl/SparseMountainCar-v0", "learner": {"num_envs": 2, "num_steps": 64},
        "intrinsic": {"type": "vime", "model": {"type": "bnn", "hidden_sizes": [32, 32],
                                                "likelihood": {"learn_noise": True}},
                      "family": "mean_field", "eta": 0.1, "fit_steps": 150, "initial_fit_steps": 300}}).intrinsic
    vime = VIME(spec, 2, 1, seed=0)
    gains, elbos, target_rms = [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VIMEHealthWarning)
        for batch in widening_stream():
            vime.reward(batch)
            gains.append(vime.stats["info_gain"])
            elbos.append(vime.update(batch)["elbo_per_transition"])
            pool, model = vime.pool.contents(), vime.info_gain.posterior.model
            target_rms.append(float(model.targets(pool.obs, pool.next_obs).square().mean().sqrt()))
    return gains, elbos, target_rms


def max_drop(elbos):
    return max(a - b for a, b in zip(elbos[:-1], elbos[1:]))


def test_widening_stream_keeps_info_gain_bounded_and_the_elbo_up(monkeypatch):
    gains, elbos, target_rms = run_stream(monkeypatch)
    assert max(gains) < MAX_INFO_GAIN, gains
    assert max_drop(elbos) < MAX_ELBO_DROP, elbos
    assert max(abs(r - 1) for r in target_rms) < 1e-2  # the model always sees unit-scale targets
    frozen = run_stream(monkeypatch, frozen=True)[2]
    assert frozen[-1] > 2  # a normalisation frozen on the first batch leaves them 2.5x too large
    # (on this smooth, linear stream the frozen model still extrapolates: its gains and ELBO stay
    # within the bounds too; the demo's blow-up came from rare jumps: see the Student-t test and
    # the slow Gaussian-noise demo test below)


def test_student_t_bounds_the_information_gain_of_a_jump():
    """A transition whose target is moved r noise scales off the fit: under Gaussian noise its
    second-order information gain grows like r² (VIME eq. 16 with ∇ ∝ r/σ²); under Student-t
    noise the score (ν + 1) r / (νσ² + r²) is bounded, so the gain stays bounded as r grows."""
    data = widening_stream(batches=2)[0]
    gains = {}
    for likelihood in ("normal", "student_t"):
        model = {"type": "bnn", "hidden_sizes": [32, 32], "likelihood": {"type": likelihood}}
        post = pprl.fit(model, "mean_field", data, steps=300, seed=0, progress=False)
        ig = InfoGain(post, "second_order", num_samples=8)
        sigma = float(post.model.noise_scale[0] * post.model.target_norm.std[0])  # raw units
        rows = []
        for r in (3.0, 30.0, 300.0):
            moved = data[:16].next_obs.clone()
            moved[:, 0] += r * sigma
            rows.append(ig(pprl.Transitions(data.obs[:16], data.act[:16], moved, data.reward[:16],
                                            data.terminated[:16], data.truncated[:16])).mean())
        gains[likelihood] = torch.stack(rows)
    g, t = gains["normal"], gains["student_t"]
    assert g[2] / g[1] > 50  # ~r²: ×100 for r ×10
    assert t[2] < t[1] * 1.5 and t[2] < MAX_INFO_GAIN and g[2] > 100 * MAX_INFO_GAIN


@pytest.fixture(scope="module")
def pendulum_fit():
    data = pprl.collect("Pendulum-v1", 3016, seed=0)
    return data[:3000], data[3000:]


@pytest.mark.parametrize("family, solver", [("mean_field", "gradient"), ("mean_field", "linearized"),
                                            ("low_rank", "gradient"), ("low_rank", "linearized"),
                                            ("laplace", "linearized"), ("flow", "gradient")])
def test_update_is_finite_and_grows_with_surprise(pendulum_fit, family, solver):
    """Transitions moved 0.5–10 units off the data of a fitted posterior (the Pendulum case that
    used to raise 'Expected parameter loc'): every gain finite, the mean strictly increasing in
    the shift, and each transition's gain increasing at ≥ 85% of the steps (the gradient solver
    finds local optima of a non-convex Monte-Carlo objective, so a few pairs may cross; with
    few common samples a low-rank factor can fit them by chance, hence S = 32 for the gradient
    solver here).
    Dense covariances are covered by laplace (full_rank's SVI fit takes minutes at this D, and
    its gradient solver holds a D×D factor per transition: checked on a linear model instead).
    """
    train, test = pendulum_fit
    post = pprl.fit("models/bnn_dynamics.yaml", family, train, steps=400, seed=0, progress=False)
    ig = InfoGain(post, "update", solver=solver, num_samples=32 if solver == "gradient" else 8)
    shifts = [0.5, 1.0, 2.0, 5.0, 10.0]
    gains = torch.stack([ig(pprl.Transitions(test.obs, test.act, test.next_obs + s, test.reward,
                                             test.terminated, test.truncated)) for s in shifts])
    assert torch.isfinite(gains).all()
    means = gains.mean(1)
    assert (means[1:] > means[:-1]).all(), means
    assert (gains[1:] > gains[:-1]).float().mean() >= 0.85


@pytest.mark.slow
def test_demo_budget_keeps_info_gain_below_the_sanity_bound(tmp_path):
    """The demo's run (examples/vime_mountaincar.yaml, 61,440 env steps, seed 0): the mean
    information gain stays below the sanity bound (the spec's ``warn_info_gain``) at every
    iteration, the pool ELBO never falls by more than ``warn_elbo_drop`` in one refit (so no
    health warning), and the agent reaches the goal."""
    bounds = VIMESpec()
    with warnings.catch_warnings():
        warnings.simplefilter("error", VIMEHealthWarning)
        summary = pprl.train("examples/vime_mountaincar.yaml", seed=0, out_dir=tmp_path, total_steps=61_440,
                             progress=False)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert metrics["info_gain"].max() < bounds.warn_info_gain
    assert max_drop(list(metrics["elbo_per_transition"].dropna())) < bounds.warn_elbo_drop
    assert summary["reached_goal"]


@pytest.mark.slow
def test_demo_budget_with_gaussian_noise_fails_the_sanity_bounds(tmp_path):
    """The check above can fail: the same run with the Gaussian-noise BNN (the issue-3 model)
    meets MountainCar's wall hits (velocity reset to 0, ~500σ residuals) and breaks both bounds."""
    spec = load_experiment("examples/vime_mountaincar.yaml")
    intrinsic = dataclasses.replace(spec.intrinsic, model=as_model_spec("models/bnn_dynamics.yaml"))
    spec = dataclasses.replace(spec, intrinsic=intrinsic)
    bounds = VIMESpec()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VIMEHealthWarning)
        pprl.train(spec, seed=0, out_dir=tmp_path, total_steps=61_440, progress=False)
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert metrics["info_gain"].max() > bounds.warn_info_gain
    assert max_drop(list(metrics["elbo_per_transition"].dropna())) > bounds.warn_elbo_drop
