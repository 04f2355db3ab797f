"""Issue 15's pixel test: a latent dynamics model fitted to rendered pendulum frames predicts 10
steps open loop (``LatentPosterior.predict``) with a lower mean squared pixel error on held-out
episodes than (a) the constant-frame baseline (the context frame repeated) and (b) a deterministic
autoencoder of the same architectures trained for the same steps and batch
(:class:`pprl.models.deterministic_ae.DeterministicAE`).

Frames: pprl/PendulumPixels-v0 at 16×16, 2 stacked frames (velocity visible), a random policy, 3,000
steps (15 episodes), a quarter of the episodes held out; windows of 10 transitions every 5th step.
"""
import pytest
import torch

import pprl
from pprl.data import collect_frames
from pprl.data.sequences import split_episodes, to_sequences
from pprl.models.deterministic_ae import build_deterministic_ae

pytestmark = pytest.mark.usefixtures("single_thread")

SIZE, K = 16, 10
SPEC = {"type": "latent", "observation": {"kind": "image", "shape": [2, SIZE, SIZE]}, "latent_size": 8,
        "encoder": {"type": "conv", "features": 64}, "decoder": {"type": "conv"},
        "transition": {"type": "mlp", "hidden_sizes": [64]}, "likelihood": {"type": "bernoulli"},
        "guide": "filtering", "sequence_length": K}
INFERENCE = {"family": "mean_field", "steps": 300, "batch_size": 16, "lr": 3e-3}


def pendulum_data(seed: int):
    frames = collect_frames("pprl/PendulumPixels-v0", 3000, seed=seed, frames=2, render={"size": SIZE})
    train, test = split_episodes(frames.transitions(), 0.25, seed=seed)
    return train, to_sequences(test, K, hop=5)


def k_step_mse(pred: torch.Tensor, held) -> torch.Tensor:
    """Mean squared pixel error of ``pred [B, K + 1, obs_dim]`` against the held-out windows, per step → ``[K + 1]``."""
    return (pred - held.obs).pow(2).mean((0, 2))


def predictive_mean(post, held, draws: int = 16) -> torch.Tensor:
    """E[o_{t+k} | o_t, a] under the model: the average of ``draws`` sampled open-loop rollouts of
    ``LatentPosterior.predict`` (the point prediction with the least expected squared error)."""
    return torch.stack([post.predict(held.obs[:, 0], held.act, sample=True, seed=s) for s in range(draws)]).mean(0)


def errors_at_k(post, ae, held) -> dict:
    """10-step-ahead MSE of the latent model (its mean rollout and its predictive mean), the deterministic
    AE and the constant frame."""
    out = {"latent_mean_rollout": k_step_mse(post.predict(held.obs[:, 0], held.act), held)[K],
           "latent_predictive_mean": k_step_mse(predictive_mean(post, held), held)[K],
           "ae": k_step_mse(ae.predict(held.obs[:, 0], held.act), held)[K],
           "constant": k_step_mse(held.obs[:, :1].expand_as(held.obs), held)[K]}
    print(f"MSE at K={K}: " + ", ".join(f"{k} {float(v):.4f}" for k, v in out.items()))
    return {k: float(v) for k, v in out.items()}


def fit_both(train, seed: int, steps: int):
    post = pprl.fit(SPEC, {**INFERENCE, "steps": steps}, train, progress=False, seed=seed)
    ae = build_deterministic_ae(SPEC, train.act_dim, seed=seed)
    ae.fit(to_sequences(train, K), steps, INFERENCE["batch_size"], INFERENCE["lr"], seed=seed)
    return post, ae


def test_latent_model_predicts_10_steps_better_than_constant_frame_and_deterministic_ae():
    """The fitted model's 10-step open-loop error is below the constant-frame baseline's (mean rollout,
    at every k ≤ 10) and below the same-size deterministic autoencoder's (the model's predictive mean:
    the AE has no uncertainty to average over). A model fitted for one step (decoder ≈ 0.5 everywhere)
    passes neither. Measured against the AE's *mean rollout*, the latent model does not win reliably
    (benchmarks/RESULTS.md, 'Latent pixel dynamics'); neither beats the training set's average frame
    beyond about 5 steps at 16×16."""
    train, held = pendulum_data(0)
    const = k_step_mse(held.obs[:, :1].expand_as(held.obs), held)
    untrained = pprl.fit(SPEC, INFERENCE, train, steps=1, progress=False, seed=0)
    assert not k_step_mse(untrained.predict(held.obs[:, 0], held.act), held)[K] < const[K]
    assert not k_step_mse(predictive_mean(untrained, held), held)[K] < const[K]

    post, ae = fit_both(train, 0, INFERENCE["steps"])
    assert torch.isfinite(post.elbo_trace).all() and post.elbo_trace[-50:].mean() > post.elbo_trace[:50].mean()
    err = k_step_mse(post.predict(held.obs[:, 0], held.act), held)
    print(f"K-step MSE, latent: {[round(float(e), 4) for e in err[1:]]}; constant: "
          f"{[round(float(e), 4) for e in const[1:]]}")
    assert (err[1:] < const[1:]).all() and err[K] < 0.85 * const[K]
    e = errors_at_k(post, ae, held)
    assert e["latent_predictive_mean"] < e["ae"]


@pytest.mark.slow
def test_latent_model_beats_deterministic_autoencoder_over_seeds_at_1000_steps():
    """The same comparison over three seeds (data, split and initial weights) at 1000 steps, averaged.
    The numbers are benchmarks/latent_pixels.py's at its defaults (about 6 minutes on one thread)."""
    runs = []
    for seed in (0, 1, 2):
        train, held = pendulum_data(seed)
        runs.append(errors_at_k(*fit_both(train, seed, 1000), held))
    mean = {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}
    assert all(r["latent_mean_rollout"] < r["constant"] for r in runs)
    assert mean["latent_predictive_mean"] < mean["ae"]
