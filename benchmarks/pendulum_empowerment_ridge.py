"""How sharply does the pendulum's empowerment single out the upright state? The linearised
empowerment of the known channel (``PendulumChannel``) on a (θ, θ̇) grid, for several horizons,
action repeats and noise models: E upright, hanging at rest, and the best E in bands of |θ|
(over θ̇ ∈ [−8, 8]), i.e. along the ridge of states that are on their way to the top.

    python benchmarks/pendulum_empowerment_ridge.py
"""
import math

import torch

from pprl.empowerment.continuous import PendulumChannel, linearised_empowerment

SETTINGS = [(4, 5, "final", 0.05), (2, 5, "final", 0.05), (8, 5, "final", 0.05), (4, 10, "final", 0.05),
            (4, 5, "final", 0.5), (4, 5, "step", 0.05), (4, 5, "step", 0.2)]
BANDS = [(0.4, 0.6), (0.9, 1.1), (1.9, 2.1)]


def main(n: int = 81) -> None:
    torch.set_num_threads(1)
    th, thd = torch.meshgrid(torch.linspace(-math.pi, math.pi, n), torch.linspace(-8, 8, n), indexing="ij")
    grid = torch.stack([th.cos(), th.sin(), thd], -1).reshape(-1, 3)
    at_rest = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])  # upright, hanging
    print("| K × repeat | noise | σ | upright | hanging | " + " | ".join(f"abs θ ≈ {(a + b) / 2:g}" for a, b in BANDS) + " |")
    print("|---" * (5 + len(BANDS)) + "|")
    for K, repeat, noise, std in SETTINGS:
        channel = PendulumChannel(std, noise, repeat)
        power = K * 4.0 ** 2 / 12  # the variance of U[-2, 2] per torque
        E = linearised_empowerment(channel, grid, K, power).reshape(n, n)
        up, down = linearised_empowerment(channel, at_rest, K, power).tolist()
        theta = th[:, 0].abs()
        bands = [float(E[(theta >= a) & (theta <= b)].max()) for a, b in BANDS]
        print(f"| {K} × {repeat} | {noise} | {std} | {up:.3f} | {down:.3f} | " + " | ".join(f"{v:.3f}" for v in bands) + " |")


if __name__ == "__main__":
    main()
