"""The latent linear-Gaussian channel (Zhao et al. 2021): batched water-filling against the scalar
one; the fitted channel's capacity against water-filling on a known LinearGaussianChannel (K = 1, 2,
where Σ_K is not white) and its gain against G_K; the per-state capacity of a channel whose gain
varies with the state against ½ log(1 + P g(s)²/σ²); seeding, the MLP embedding and bad input."""
import pytest
import torch

from pprl.data import Transitions
from pprl.empowerment import (LatentGaussianChannel, LinearGaussianChannel, linear_gaussian_empowerment,
                              water_filling, water_filling_batched)

pytestmark = pytest.mark.usefixtures("single_thread")


def test_batched_water_filling_equals_the_scalar_one():
    g = torch.Generator().manual_seed(0)
    lam = 3 * torch.rand(300, 4, dtype=torch.float64, generator=g)
    lam[lam < 0.5] = 0.0                  # some zero gains, some channels with none
    lam[::5, 1] = lam[::5, 2]             # ties
    power = 4 * torch.rand(300, dtype=torch.float64, generator=g)
    power[::7] = 0.0
    C, p = water_filling_batched(lam, 0.7, power)
    assert C.shape == (300,) and p.shape == (300, 4)
    for i in range(300):
        c_ref, p_ref = water_filling(lam[i], 0.7, float(power[i]))
        assert float(C[i]) == pytest.approx(c_ref, abs=1e-12)
        torch.testing.assert_close(p[i], p_ref, atol=1e-12, rtol=0)
    # any batch shape, a scalar power, gains given as matrices' singular values
    G = torch.randn(2, 3, 4, 5, dtype=torch.float64, generator=g)
    C, _ = water_filling_batched(torch.linalg.svdvals(G), 1.0, 2.0)
    assert C.shape == (2, 3)
    assert float(C[1, 2]) == pytest.approx(water_filling(G[1, 2], 1.0, 2.0)[0], abs=1e-12)
    with pytest.raises(ValueError, match="noise_var must be > 0"):
        water_filling_batched(lam, 0.0, 1.0)
    with pytest.raises(ValueError, match="must broadcast"):
        water_filling_batched(lam, 1.0, torch.ones(7))


def rollouts(channel: LinearGaussianChannel, episodes: int, length: int, seed: int = 0, spread: float = 3.0):
    """Episodes of ``length`` steps from broad initial states N(0, spread² I) under N(0, I) actions,
    one after another in one stream, each ending in a truncation."""
    g = torch.Generator().manual_seed(seed)
    n, m = channel.B.shape
    s = spread * torch.randn(episodes, n, dtype=torch.float64, generator=g)
    obs, act, nxt = [], [], []
    for _ in range(length):
        a = torch.randn(episodes, m, dtype=torch.float64, generator=g)
        s2 = channel.sample(s, a, generator=g)
        obs.append(s), act.append(a), nxt.append(s2)
        s = s2
    trunc = torch.zeros(episodes, length, dtype=torch.bool)
    trunc[:, -1] = True
    return Transitions(torch.stack(obs, 1).reshape(-1, n).float(), torch.stack(act, 1).reshape(-1, m).float(),
                       torch.stack(nxt, 1).reshape(-1, n).float(), truncated=trunc.reshape(-1))


# strongly coupled A: the 2-step noise σ²(I + A Aᵀ) has correlation 0.3, and whitening it by its
# diagonal alone would put the K = 2 capacity at P = 1 about 15 % too high
LINEAR = LinearGaussianChannel(A=torch.tensor([[0.7, 0.9], [-0.1, 0.7]]), B=torch.tensor([[0.6, 0.0], [0.5, 0.4]]),
                               noise_std=0.5)


@pytest.mark.parametrize("horizon", [1, 2])
def test_capacity_and_gain_of_a_linear_gaussian_channel(horizon):
    data = rollouts(LINEAR, episodes=4000, length=horizon + 2)
    channel = LatentGaussianChannel(2, 2, horizon, seed=0).fit(data, 1500, progress=False)
    states = 2 * torch.randn(200, 2, generator=torch.Generator().manual_seed(1))
    for power in (1.0, 4.0):
        truth = linear_gaussian_empowerment(LINEAR, horizon, power)
        C = channel.empowerment(states, power)
        assert C.shape == (200,) and C.dtype == torch.float32
        assert float(C.mean()) == pytest.approx(truth, rel=0.03), f"P={power}: mean {float(C.mean()):.4f} vs {truth:.4f}"
        assert float((C / truth - 1).abs().max()) < 0.06, f"P={power}: {float(C.min()):.4f}..{float(C.max()):.4f}"
    G = LINEAR.gain(horizon).float()  # [A^{K-1}B, ..., B]
    A = channel.gain(states)
    assert A.shape == (200, 2, 2 * horizon)
    assert float((A.mean(0) - G).abs().max()) < 0.04, f"mean A(z) {A.mean(0)} vs G_K {G}"
    assert float((A - G).abs().max()) < 0.08
    # the K-step noise: full (non-white for K = 2), recovered
    torch.testing.assert_close(channel.noise_cov(), LINEAR.noise_cov(horizon).float(), atol=0.02, rtol=0)
    assert channel.trace.shape == (1500,) and channel.trace[-100:].mean() < channel.trace[:10].mean()


def test_per_state_capacity_follows_a_state_dependent_gain():
    """s' = s + g(s) a + σ ε with g(s) = 1 + 0.8 sin s (K = 1, scalar): C(s) = ½ log(1 + P g(s)²/σ²)."""
    sigma, power = 0.3, 1.0
    g = torch.Generator().manual_seed(0)
    gain = lambda s: 1.0 + 0.8 * torch.sin(s)  # noqa: E731
    s = 6 * torch.rand(20000, 1, generator=g) - 3
    a = torch.randn(20000, 1, 1, generator=g)
    s_K = s + gain(s) * a[:, 0] + sigma * torch.randn(20000, 1, generator=g)
    channel = LatentGaussianChannel(1, 1, 1, seed=0).fit((s, a, s_K), 1500, progress=False)
    grid = torch.linspace(-2.5, 2.5, 101).unsqueeze(1)
    truth = 0.5 * torch.log1p(power * gain(grid[:, 0]) ** 2 / sigma ** 2)  # 0.18 … 1.81 nats
    err = channel.empowerment(grid, power) - truth
    assert float(err.abs().max()) < 0.06, f"largest error {float(err.abs().max()):.4f} nats"
    assert float(err.abs().mean()) < 0.02, f"mean error {float(err.abs().mean()):.4f} nats"
    torch.testing.assert_close(channel.gain(grid)[:, 0, 0], gain(grid[:, 0]), atol=0.06, rtol=0)


def small_windows(n=500, horizon=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, 3, generator=g)
    a = torch.randn(n, horizon, 2, generator=g)
    s_K = 0.9 * s + a.sum(1) @ torch.ones(2, 3) * 0.5 + 0.1 * torch.randn(n, 3, generator=g)
    return s, a, s_K


def test_seeding_is_reproducible_and_leaves_the_global_rng_alone():
    windows, states = small_windows(), torch.randn(10, 3, generator=torch.Generator().manual_seed(2))
    torch.manual_seed(123)
    before = torch.get_rng_state()
    runs = [LatentGaussianChannel(3, 2, 2, seed=seed).fit(windows, 60, batch_size=64, progress=False)
            for seed in (0, 0, 1)]
    values = [r.empowerment(states, 1.0) for r in runs]
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(values[0], values[1]) and (runs[0].trace == runs[1].trace).all()
    assert not torch.equal(values[0], values[2])


def test_mlp_embedding_fits_and_gives_finite_capacities():
    windows = small_windows(800)
    channel = LatentGaussianChannel(3, 2, 2, embedding="mlp", latent_dim=2, seed=0)
    channel.fit(windows, 300, batch_size=128, progress=False)
    states = torch.randn(20, 3, generator=torch.Generator().manual_seed(3))
    assert channel.embed(states).shape == (20, 2) and channel.gain(states).shape == (20, 2, 4)
    C = channel.empowerment(states, 1.0)
    assert C.shape == (20,) and bool(C.isfinite().all()) and bool((C > 0).all())
    assert channel.trace[-30:].mean() < channel.trace[:10].mean()
    assert channel.empowerment(states, 0.0).abs().max() == 0  # no power, no capacity


def test_bad_input_gets_a_clear_value_error():
    s, a, s_K = small_windows()
    ch = LatentGaussianChannel(3, 2, 2)
    with pytest.raises(ValueError, match=r"window actions must be \[N, K=2, m=2\]"):
        ch.fit((s, a[:, :1], s_K), 1, progress=False)
    with pytest.raises(ValueError, match=r"must be \[N, 3\]"):
        ch.fit((s[:, :2], a, s_K), 1, progress=False)
    with pytest.raises(ValueError, match="share their length"):
        ch.fit((s, a, s_K[:-1]), 1, progress=False)
    bad = s_K.clone()
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        ch.fit((s, a, bad), 1, progress=False)
    with pytest.raises(ValueError, match="obs_dim 1 and act_dim 1"):
        ch.fit(Transitions(torch.zeros(5, 1), torch.zeros(5, 1), torch.zeros(5, 1)), 1, progress=False)
    short = Transitions(torch.zeros(6, 3), torch.zeros(6, 2), torch.zeros(6, 3), terminated=torch.ones(6, dtype=torch.bool))
    with pytest.raises(ValueError, match="at least 2 windows"):
        ch.fit(short, 1, progress=False)
    with pytest.raises(ValueError, match="fit needs Transitions or windows"):
        ch.fit(s, 1, progress=False)
    with pytest.raises(ValueError, match="power must be a finite number >= 0"):
        ch.empowerment(s, -1.0)
    with pytest.raises(ValueError, match="embedding must be one of identity, mlp"):
        LatentGaussianChannel(3, 2, 2, embedding="cnn")
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        LatentGaussianChannel(3, 2, 0)
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        ch.fit((s, a, s_K), -1, progress=False)
