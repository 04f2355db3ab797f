"""Cart-pole swing-up with a sparse reward (VIME, Houthooft et al. 2016, Sec. 4).

Physics: the frictionless cart-pole of Barto, Sutton & Anderson (1983) / Florian (2007) (the
two agree without friction), as in gymnasium's CartPole, with θ = 0 upright:

    θ̈ = (g sin θ − cos θ · (F + m_p l θ̇² sin θ) / M) / (l (4/3 − m_p cos² θ / M))
    ẍ = (F + m_p l (θ̇² sin θ − θ̈ cos θ)) / M,          M = m_c + m_p

integrated with semi-implicit Euler (velocities first, then positions with the new
velocities) at dt = 0.02 s: unforced from θ = π − 1, total energy drifts by < 0.001 J over
500 steps, whereas explicit Euler injects about 0.85 J, nearly enough to swing the pole up
by itself. Constants: g = 9.8, m_c = 1.0, m_p = 0.1, l = 0.5 (half the pole length),
F = 10 N · a with a ∈ [-1, 1], track |x| <= 3 (the track half-length of rllab's sparse
swing-up used by VIME). The pole starts hanging down, θ = π + U(-0.05, 0.05); x, ẋ, θ̇ start
at U(-0.05, 0.05).

Observation: [x, ẋ, cos θ, sin θ, θ̇] (float32). Reward, on the state after the step::

    r_t = 1  if  cos θ > 0.8 and |x| <= 3,   else 0

The episode terminates when the cart leaves the track (|x| > 3). Registered with a horizon
of 500 steps (10 s), the VIME/rllab horizon; the energy-pumping controller in
tests/rl/test_envs.py first earns +1 after about 1.5 s, so the horizon leaves room to balance.
"""
import math

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class CartPoleSwingUpEnv(gym.Env):
    """Cart-pole that must swing the pole up from hanging down; +1 per step near upright."""

    metadata = {"render_modes": [], "render_fps": 50}

    gravity = 9.8
    mass_cart = 1.0
    mass_pole = 0.1
    half_length = 0.5
    max_force = 10.0
    dt = 0.02
    x_threshold = 3.0
    cos_threshold = 0.8

    def __init__(self, render_mode: str | None = None):
        if render_mode is not None:
            raise ValueError(f"CartPoleSwingUpEnv: render_mode={render_mode!r} is not supported; "
                             "only render_mode=None is.")
        self.render_mode = render_mode
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        high = np.array([np.inf, np.inf, 1.0, 1.0, np.inf], dtype=np.float32)
        self.observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.state = np.zeros(4)  # x, ẋ, θ, θ̇

    def _obs(self) -> np.ndarray:
        x, x_dot, theta, theta_dot = self.state
        return np.array([x, x_dot, math.cos(theta), math.sin(theta), theta_dot], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-0.05, 0.05, size=4)
        self.state[2] += math.pi
        return self._obs(), {}

    def step(self, action: np.ndarray):
        force = self.max_force * float(np.clip(np.ravel(action)[0], -1.0, 1.0))
        x, x_dot, theta, theta_dot = self.state
        m_p, l, total = self.mass_pole, self.half_length, self.mass_cart + self.mass_pole
        sin, cos = math.sin(theta), math.cos(theta)
        temp = (force + m_p * l * theta_dot**2 * sin) / total
        theta_acc = (self.gravity * sin - cos * temp) / (l * (4.0 / 3.0 - m_p * cos**2 / total))
        x_acc = temp - m_p * l * theta_acc * cos / total
        x_dot += self.dt * x_acc
        theta_dot += self.dt * theta_acc
        x += self.dt * x_dot
        theta = (theta + self.dt * theta_dot + math.pi) % (2 * math.pi) - math.pi  # in [-π, π)
        self.state = np.array([x, x_dot, theta, theta_dot])

        in_bounds = abs(x) <= self.x_threshold
        success = bool(in_bounds and math.cos(theta) > self.cos_threshold)
        return self._obs(), 1.0 if success else 0.0, not in_bounds, False, {"is_success": success}
