"""Continuous channels (issue 14, items 1 and 3): the pendulum channel is gymnasium's Pendulum-v1,
the linearised estimate is exact on linear-Gaussian channels (known, and learned as a Posterior),
and the variational estimator with a squashed Gaussian source reaches the capacity of an
amplitude-limited Gaussian channel, computed by Blahut–Arimoto on a fine discretisation."""
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import pprl
from pprl import Empowerment
from pprl.data import Transitions
from pprl.empowerment import (AmplitudeLimitedChannel, LinearGaussianChannel, PendulumChannel, PosteriorChannel,
                              amplitude_limited_capacity, linear_gaussian_empowerment, linearised_empowerment)
from pprl.empowerment.continuous import nominal_sequences


def test_pendulum_channel_is_gymnasiums_pendulum():
    env = gym.make("Pendulum-v1").unwrapped
    env.reset(seed=0)
    channel = PendulumChannel(noise_std=1e-3, action_repeat=1)
    rng = np.random.default_rng(0)
    states = np.stack([rng.uniform(-np.pi, np.pi, 64), rng.uniform(-8, 8, 64)], 1)
    actions = rng.uniform(-2.5, 2.5, (64, 3))  # beyond the box too: both clip
    expected = []
    for (th, thd), acts in zip(states, actions):
        env.state = np.array([th, thd])
        for u in acts:
            obs, *_ = env.step(np.array([u], dtype=np.float32))
        expected.append(obs)
    s = torch.tensor(np.stack([np.cos(states[:, 0]), np.sin(states[:, 0]), states[:, 1]], 1), dtype=torch.float64)
    got = channel.rollout(s, torch.tensor(actions, dtype=torch.float64).unsqueeze(-1), torch.zeros(64, 1, 2,
                                                                                                 dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), np.stack(expected), atol=1e-5)
    # action_repeat holds each action: K = 1 × 3 repeats equals K = 3 of the same action
    held = PendulumChannel(noise_std=1e-3, action_repeat=3).rollout(s, torch.full((64, 1, 1), 0.7, dtype=s.dtype),
                                                                    torch.zeros(64, 1, 2, dtype=s.dtype))
    three = channel.rollout(s, torch.full((64, 3, 1), 0.7, dtype=s.dtype), torch.zeros(64, 1, 2, dtype=s.dtype))
    torch.testing.assert_close(held, three)


@pytest.mark.parametrize("horizon", [1, 2, 3])
def test_linearised_estimate_is_exact_on_a_linear_gaussian_channel(horizon):
    channel = LinearGaussianChannel(torch.tensor([[1.2, 0.3], [0.0, 0.7]]), torch.tensor([[0.5], [1.0]]), 0.5)
    exact = linear_gaussian_empowerment(channel, horizon, 2.0)
    got = linearised_empowerment(channel, torch.randn(5, 2, generator=torch.Generator().manual_seed(0)), horizon, 2.0)
    assert got.shape == (5,)
    np.testing.assert_allclose(got.numpy(), exact, rtol=1e-5)


def test_pendulum_is_most_empowered_upright_under_sensor_noise():
    theta = torch.linspace(-math.pi, math.pi, 33)[:-1]
    s = torch.stack([theta.cos(), theta.sin(), torch.zeros_like(theta)], -1)
    sensor = linearised_empowerment(PendulumChannel(0.05, "final", action_repeat=5), s, 4, 4 * 16 / 12)
    assert int(sensor.argmax()) == 16 and float(sensor[16] - sensor[0]) > 1.0  # θ = 0 upright, θ = −π down
    # process noise is stretched like the actions: the upright advantage mostly goes (docstring)
    process = linearised_empowerment(PendulumChannel(0.05, "step", action_repeat=5), s, 4, 4 * 16 / 12)
    assert float(process[16] - process[0]) < 0.5 * float(sensor[16] - sensor[0])


def test_nominal_sequences_span_the_box_interior():
    class Box2:
        act_dim, action_low, action_high = 2, torch.tensor([-1.0, 0.0]), torch.tensor([1.0, 4.0])

    centre = nominal_sequences(Box2, 3, 1)
    torch.testing.assert_close(centre, torch.tensor([[[0.0, 2.0]] * 3], dtype=torch.float64))
    grid = nominal_sequences(Box2, 3, 3)  # interior points 1/4, 1/2, 3/4 of each side: 3² constant sequences
    assert grid.shape == (9, 3, 2) and (grid == grid[:, :1]).all()
    assert sorted(set(grid[:, 0, 0].tolist())) == [-0.5, 0.0, 0.5] and sorted(set(grid[:, 0, 1].tolist())) == [1, 2, 3]
    even = nominal_sequences(Box2, 1, 2)  # the middle joins an even grid, so the best is never below it
    assert even.shape == (5, 1, 2) and even[0, 0].tolist() == [0.0, 2.0]

    class Skewed:  # an asymmetric float32 box: the middle as before nominal_points existed, bit for bit
        act_dim, action_low, action_high = 1, torch.tensor([0.1]), torch.tensor([0.7])

    assert nominal_sequences(Skewed, 2, 1)[0, 0, 0].item() == ((torch.tensor(0.1) + torch.tensor(0.7)) / 2).double().item()
    unbounded = LinearGaussianChannel(torch.eye(2), torch.ones(2, 1), 0.5)
    with pytest.raises(ValueError, match="action box"):
        linearised_empowerment(unbounded, torch.zeros(3, 2), 2, 1.0, nominal_points=3)
    with pytest.raises(ValueError, match=">= 1"):
        nominal_sequences(Box2, 3, 0)


def test_nominal_points_change_nothing_where_the_channel_is_linear():
    # s' = s + a + σε is linear inside its box: every nominal sequence has the same tangent channel
    channel = AmplitudeLimitedChannel(0.2)
    s = torch.linspace(-2, 2, 7)[:, None]
    torch.testing.assert_close(linearised_empowerment(channel, s, 2, 0.5, nominal_points=5),
                               linearised_empowerment(channel, s, 2, 0.5))


def test_best_nominal_sequence_widens_the_pendulums_upright_peak():
    """At the centre (zero torque) E(s) is read off the passive trajectory, so a pendulum at rest
    0.1 rad from the top (falling away) already loses 0.15 nats; with the best of 7 constant
    torques, one of which steers it back, it keeps the top's value. Hanging stays far below, and
    the grid holds the centre, so the best is never below it."""
    channel = PendulumChannel(0.05, "final", action_repeat=5)
    theta = torch.tensor([0.0, 0.1, -0.1, math.pi, 1.0])
    s = torch.stack([theta.cos(), theta.sin(), torch.zeros_like(theta)], -1)
    centre = linearised_empowerment(channel, s, 4, 16 / 3)
    best = linearised_empowerment(channel, s, 4, 16 / 3, nominal_points=7)
    assert float(centre[0] - centre[1]) > 0.1 and float(centre[0] - centre[2]) > 0.1
    assert abs(float(best[0] - best[1])) < 0.01 and abs(float(best[0] - best[2])) < 0.01
    assert (best >= centre - 1e-6).all() and float(best[0] - best[3]) > 1.5 and int(best.argmax()) in (0, 1, 2)


def test_learned_channel_of_a_linear_gaussian_system_has_its_empowerment():
    truth = LinearGaussianChannel(torch.tensor([[0.9, 0.2], [0.0, 0.8]]), torch.tensor([[0.0], [1.0]]), 0.1)
    g = torch.Generator().manual_seed(0)
    s = 2 * torch.randn(4000, 2, generator=g)
    a = torch.rand(4000, 1, generator=g) * 2 - 1
    data = Transitions(obs=s, act=a, next_obs=truth.sample(s, a, generator=g))
    posterior = pprl.fit("linear_gaussian", "mean_field", data, steps=1500, seed=0, progress=False)
    channel = PosteriorChannel(posterior, [-1.0], [1.0], noise="step")
    power = 2 * 4 / 12
    for horizon in (1, 2):
        exact = linear_gaussian_empowerment(truth, horizon, power)
        got = linearised_empowerment(channel, s[:3], horizon, power)
        np.testing.assert_allclose(got.numpy(), exact, rtol=0.03)
    # declared noise replaces the model's: the estimate is then the truth's capacity at that σ
    declared = PosteriorChannel(posterior, [-1.0], [1.0], noise="step", noise_std=0.3)
    for horizon in (1, 2):
        exact = linear_gaussian_empowerment(LinearGaussianChannel(truth.A, truth.B, 0.3), horizon, power)
        np.testing.assert_allclose(linearised_empowerment(declared, s[:3], horizon, power).numpy(), exact, rtol=0.03)
    with pytest.raises(ValueError, match="noise_scale"):
        PosteriorChannel(posterior, [-1.0], [1.0], noise_std=0.3, noise_scale=2.0)
    # the same channel sampled forward agrees with the truth's one-step mean
    noise = torch.zeros(3, *channel.noise_shape(1))
    torch.testing.assert_close(channel.rollout(s[:3], a[:3, None], noise), s[:3] @ truth.A.T.float() + a[:3] @
                               truth.B.T.float(), atol=0.02, rtol=0)


def test_posterior_channel_sampled_theta_is_seeded_and_varies_across_rollouts():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(500, 2, generator=g)
    a = torch.rand(500, 1, generator=g) * 2 - 1
    truth = LinearGaussianChannel(torch.eye(2), torch.tensor([[0.0], [1.0]]), 0.1)
    posterior = pprl.fit("linear_gaussian", "mean_field", Transitions(obs=s, act=a, next_obs=truth.sample(s, a, g)),
                         steps=300, seed=0, progress=False)
    x, acts, zero = s[:1].expand(16, 2), torch.zeros(16, 1, 1), torch.zeros(16, 1, 2)
    first = PosteriorChannel(posterior, [-1.0], [1.0], theta="sample", num_thetas=8, seed=3).rollout(x, acts, zero)
    again = PosteriorChannel(posterior, [-1.0], [1.0], theta="sample", num_thetas=8, seed=3).rollout(x, acts, zero)
    torch.testing.assert_close(first, again)
    assert torch.allclose(first[:8], first[8:]) and not torch.allclose(first[0], first[1])  # rollout i: θ_{i mod 8}


def test_squashed_gaussian_source_reaches_the_amplitude_limited_capacity():
    sigma = 0.2
    capacity = float(amplitude_limited_capacity(sigma).capacity)
    states = torch.zeros(64, 1) + torch.linspace(-1, 1, 64)[:, None]
    emp = Empowerment(AmplitudeLimitedChannel(sigma), 1, states=states, hidden=32, lr=1e-2, seed=0)
    emp.fit(600, batch_states=16, num_samples=64, progress=False)
    value, stderr = emp.estimate(states[:8], num_samples=2 ** 14)
    mean, err = float(value.mean()), float(stderr.mean())
    assert mean <= capacity + 3 * err, f"{mean:.4f} above capacity {capacity:.4f}"
    # the capacity-achieving input of an amplitude-limited channel is discrete (Smith 1971); a
    # squashed Gaussian source with a Gaussian planner gets most of it at this SNR, not all
    assert mean > 0.8 * capacity, f"{mean:.4f} vs capacity {capacity:.4f}"
    assert emp.trace[-20:].mean() > emp.trace[:5].mean()


def test_mixture_planner_recovers_what_one_gaussian_loses_at_low_snr():
    # at σ = 0.5 the optimal input is nearly binary (±1) and the posterior over a given s' is
    # bimodal: one Gaussian planner stays below even a uniform input's MI, a mixture does not
    from pprl.empowerment import amplitude_limited_matrix, mutual_information

    sigma = 0.5
    capacity = float(amplitude_limited_capacity(sigma, inputs=201, bins_per_std=20, tol=1e-5).capacity)
    uniform = mutual_information(amplitude_limited_matrix(sigma, inputs=201, bins_per_std=20),
                                 torch.full((201,), 1 / 201, dtype=torch.float64))
    states = torch.linspace(-1, 1, 64)[:, None]
    values = {}
    for J in (1, 4):
        emp = Empowerment(AmplitudeLimitedChannel(sigma), 1, states=states, hidden=32, lr=1e-2, seed=0,
                          planner_components=J)
        emp.fit(600, batch_states=16, num_samples=64, progress=False)
        value, stderr = emp.estimate(states[:8], num_samples=2 ** 14)
        values[J], err = float(value.mean()), float(stderr.mean())
        assert values[J] <= capacity + 3 * err, f"J={J}: {values[J]:.4f} above capacity {capacity:.4f}"
    assert values[1] < uniform < values[4], values
    assert values[4] > values[1] + 0.1
    with pytest.raises(ValueError, match="components must be >= 1"):
        Empowerment(AmplitudeLimitedChannel(sigma), 1, states=states, planner_components=0)
    from pprl.empowerment import GridWorld

    with pytest.raises(ValueError, match="planner_components applies to continuous channels"):
        Empowerment(GridWorld(["..", ".."]), 1, planner_components=2)


def test_bad_continuous_input_is_one_clear_error():
    with pytest.raises(ValueError, match="states="):
        Empowerment(AmplitudeLimitedChannel(0.2), 1)
    emp = Empowerment(AmplitudeLimitedChannel(0.2), 1, states=torch.randn(8, 1))
    with pytest.raises(ValueError, match=r"states must be \[N, 1\]"):
        emp(torch.zeros(3, 2))
    with pytest.raises(ValueError, match="noise_std must be > 0"):
        PendulumChannel(noise_std=0.0)
    with pytest.raises(ValueError, match="noise must be one of"):
        PendulumChannel(noise="sensor")
    with pytest.raises(ValueError, match="high > low"):
        PendulumChannel(max_torque=0.0)


def test_pyro_view_of_a_continuous_channel_gives_the_same_bound():
    from pprl.inference.barber_agakov import barber_agakov_terms
    from pprl.rng import seeded

    states = torch.linspace(-1, 1, 8)[:, None]
    emp = Empowerment(AmplitudeLimitedChannel(0.2), 1, states=states, hidden=32, lr=1e-2, seed=0).fit(200, progress=False)
    u, s_K = emp.model(states)
    torch.testing.assert_close(emp._planner_u(states, s_K).log_prob(u), emp.nets.planner_log_prob(states, s_K, u))
    mixture = Empowerment(AmplitudeLimitedChannel(0.2), 1, states=states, hidden=32, seed=0, planner_components=3)
    mixture.fit(20, progress=False)
    torch.testing.assert_close(mixture._planner_u(states, s_K).log_prob(u),
                               mixture.nets.planner_log_prob(states, s_K, u))
    with seeded(0):
        terms = barber_agakov_terms(emp.model, emp.guide, "u", "s_K", 4096, states).detach()
    value, stderr = emp.estimate(states, num_samples=4096)
    # the sum over the 8 states of the same bound; 4 standard errors of the two estimates
    assert float(terms.mean()) / 8 == pytest.approx(float(value.mean()), abs=4 * float(stderr.mean()) + 0.01)


class StripImage:
    """s [N, 1] → a bump at s on a [1, 4, 32] strip over [−3, 3] (differentiable in s)."""

    shape = (1, 4, 32)

    def __init__(self, blank: bool = False):
        self.blank = blank

    def __call__(self, s):
        x = torch.linspace(-3, 3, 32, dtype=s.dtype, device=s.device)
        row = torch.exp(-0.5 * ((x - s) / 0.15) ** 2)
        if self.blank:  # the same image for every state: nothing to read
            row = torch.zeros_like(row)
        return row[:, None, None, :].expand(-1, 1, 4, 32)


def test_estimator_reading_images_of_a_continuous_channel_matches_the_state_based_one():
    channel = AmplitudeLimitedChannel(0.2)
    capacity = float(amplitude_limited_capacity(0.2).capacity)
    states = torch.linspace(-1, 1, 64)[:, None]
    common = dict(states=states, hidden=32, lr=3e-3, seed=0)
    by_state = Empowerment(channel, 1, **common).fit(200, batch_states=8, num_samples=32, progress=False)
    by_pixels = Empowerment(channel, 1, observe=StripImage(), encoder="conv", **common)
    by_pixels.fit(200, batch_states=8, num_samples=32, progress=False)
    value, stderr = by_pixels.estimate(states[:8], num_samples=4096)
    assert float(value.mean()) <= capacity + 3 * float(stderr.mean())
    assert float(value.mean()) > 0.7 * capacity
    assert abs(float(value.mean()) - float(by_state(states[:8], num_samples=4096).mean())) < 0.1
    # the images carry the information: with the same picture for every state the bound stays at ~0
    blank = Empowerment(channel, 1, observe=StripImage(blank=True), encoder="conv", **common)
    assert float(blank.fit(50, batch_states=8, num_samples=32, progress=False)(states[:8], num_samples=1024).mean()) < 0.1
    with pytest.raises(ValueError, match="needs both observe"):
        Empowerment(channel, 1, states=states, observe=StripImage())


def test_pendulum_image_is_differentiable_and_points_up_at_theta_zero():
    from pprl.empowerment.continuous import PendulumImage

    image = PendulumImage(16)
    s = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 3.0]], requires_grad=True)
    x = image(s)
    assert x.shape == (2, 2, 16, 16)
    upright = x[0, 0] > 0.5
    assert upright[:8].sum() > 0 and upright[9:].sum() == 0  # θ = 0: the rod lies in the top half
    torch.testing.assert_close(x[0, 0], x[0, 1])              # at rest both frames agree
    assert not torch.allclose(x[1, 0], x[1, 1])               # moving: the earlier frame differs
    x[1].sum().backward()
    assert torch.isfinite(s.grad).all() and s.grad[1].abs().sum() > 0
