"""Exact empowerment: Blahut–Arimoto against channels with known capacities, gridworld empowerment
against counting reachable cells, water-filling against worked cases."""
import itertools
import math

import pytest
import torch

from pprl.empowerment import ACTIONS, GridWorld, LinearGaussianChannel, blahut_arimoto, exact, linear_gaussian_empowerment, water_filling

LN2 = math.log(2)


def entropy_bits(p):
    return 0.0 if p in (0, 1) else -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


@pytest.mark.parametrize("p", [0.0, 0.11, 0.3, 0.5])
def test_binary_symmetric_channel(p):
    out = blahut_arimoto(torch.tensor([[1 - p, p], [p, 1 - p]]))
    assert float(out.capacity) == pytest.approx((1 - entropy_bits(p)) * LN2, abs=1e-6)
    torch.testing.assert_close(out.input_dist, torch.full((2,), 0.5, dtype=torch.float64), atol=1e-4, rtol=0)


@pytest.mark.parametrize("eps", [0.1, 0.5, 0.9])
def test_binary_erasure_channel(eps):
    ch = torch.tensor([[1 - eps, eps, 0.0], [0.0, eps, 1 - eps]])
    assert float(blahut_arimoto(ch).capacity) == pytest.approx((1 - eps) * LN2, abs=1e-6)


def test_z_channel_has_a_non_uniform_optimal_input():
    """Z-channel with crossover 1/2: C = log2(5/4) bits, optimal P(x = 1) = 2/5."""
    out = blahut_arimoto(torch.tensor([[1.0, 0.0], [0.5, 0.5]]))
    assert float(out.capacity) == pytest.approx(math.log(5 / 4), abs=1e-6)
    assert float(out.input_dist[1]) == pytest.approx(0.4, abs=1e-3)


def test_five_ary_symmetric_and_deterministic_channels():
    e = 0.2  # keep with 1 − e, else one of the other 4 uniformly: C = log 5 − H(1 − e, e/4 × 4)
    ch = torch.full((5, 5), e / 4) + torch.eye(5) * (1 - e - e / 4)
    h = -((1 - e) * math.log(1 - e) + e * math.log(e / 4))
    assert float(blahut_arimoto(ch).capacity) == pytest.approx(math.log(5) - h, abs=1e-6)
    det = torch.tensor([[1.0, 0], [1, 0], [0, 1], [0, 1]])  # 4 inputs onto 2 outputs
    assert float(blahut_arimoto(det).capacity) == pytest.approx(LN2, abs=1e-6)


def test_batched_and_bad_input():
    chans = torch.stack([torch.tensor([[0.9, 0.1], [0.1, 0.9]]), torch.eye(2)])
    out = blahut_arimoto(chans)
    assert out.capacity.shape == (2,) and float(out.capacity[1]) == pytest.approx(LN2, abs=1e-7)
    assert (out.gap < 1e-7).all()
    with pytest.raises(ValueError, match="probability distribution"):
        blahut_arimoto(torch.tensor([[0.5, 0.6], [0.5, 0.5]]))


def reachable(grid: GridWorld, cell, horizon):
    """Distinct cells reachable in exactly K deterministic steps (stay is an action)."""
    frontier = {cell}
    for _ in range(horizon):
        frontier = {grid.cells[int(grid.kernel[grid.cells.index(c), a].argmax())] for c in frontier
                    for a in range(len(ACTIONS))}
    return len(frontier)


OPEN5 = ["....."] * 5


@pytest.mark.parametrize("horizon", [1, 2, 3])
def test_deterministic_grid_empowerment_is_log_of_reachable_cells(horizon):
    grid = GridWorld(OPEN5)
    emp = exact(grid, horizon).capacity
    for cell in [(0, 0), (0, 2), (2, 2)]:  # corner, edge, centre
        assert float(emp[grid.cells.index(cell)]) == pytest.approx(math.log(reachable(grid, cell, horizon)), abs=1e-6)
    assert emp[grid.cells.index((2, 2))] > emp[grid.cells.index((0, 2))] > emp[grid.cells.index((0, 0))]


@pytest.mark.parametrize("horizon", [1, 2, 3])
def test_centre_of_a_large_open_grid(horizon):
    grid = GridWorld(["." * 9] * 9)
    centre = grid.cells.index((4, 4))
    assert float(exact(grid, horizon).capacity[centre]) == pytest.approx(math.log(2 * horizon ** 2 + 2 * horizon + 1), abs=1e-6)


def test_slippery_grid_against_an_explicit_two_step_channel():
    """compose() against p(s_2 | s, a1, a2) built by summing over the intermediate cell in Python."""
    grid = GridWorld(["...", ".#.", "..."], slip=0.2)
    P, S, A = grid.kernel, grid.num_states, grid.num_actions
    explicit = torch.zeros(S, A * A, S, dtype=torch.float64)
    for s, a1, a2, mid, end in itertools.product(range(S), range(A), range(A), range(S), range(S)):
        explicit[s, a1 * A + a2, end] += P[s, a1, mid] * P[mid, a2, end]
    torch.testing.assert_close(grid.compose(2), explicit)
    ours = exact(grid, 2).capacity
    for s in range(S):
        assert float(ours[s]) == pytest.approx(float(blahut_arimoto(explicit[s]).capacity), abs=1e-7)
    deterministic = exact(GridWorld(["...", ".#.", "..."]), 2).capacity
    assert (ours < deterministic).all()  # slipping loses control


def test_water_filling_worked_cases():
    c, p = water_filling(torch.diag(torch.tensor([1.0, 0.5])), noise_var=1.0, power=1.0)
    assert c == pytest.approx(0.5 * math.log(2), abs=1e-9) and p.tolist() == pytest.approx([1.0, 0.0])
    c, p = water_filling(torch.eye(2), noise_var=1.0, power=2.0)
    assert c == pytest.approx(math.log(2), abs=1e-9) and p.tolist() == pytest.approx([1.0, 1.0])
    c, p = water_filling(torch.tensor([2.0, 1.0]), noise_var=1.0, power=1.0)  # level 0.8125: both filled
    assert p.sum() == pytest.approx(1.0) and (p > 0).all()
    assert c == pytest.approx(0.5 * (math.log(1 + p[0] * 4) + math.log(1 + p[1])))


def test_linear_gaussian_channel_one_step_is_water_filling():
    ch = LinearGaussianChannel(A=torch.eye(2), B=torch.diag(torch.tensor([1.0, 0.5])), noise_std=1.0)
    assert linear_gaussian_empowerment(ch, 1, power=1.0) == pytest.approx(0.5 * math.log(2), abs=1e-9)
    assert linear_gaussian_empowerment(ch, 2, power=1.0) > linear_gaussian_empowerment(ch, 1, power=1.0) - 1e-12


def test_water_filling_with_zero_gains_is_aligned_and_zero_capacity_is_allowed():
    c, p = water_filling(torch.tensor([2.0, 0.0, 1.0]), noise_var=1.0, power=1.0)
    c2, p2 = water_filling(torch.tensor([2.0, 1.0]), noise_var=1.0, power=1.0)
    assert c == pytest.approx(c2) and p.tolist() == pytest.approx([float(p2[0]), 0.0, float(p2[1])])
    assert water_filling(torch.zeros(3), 1.0, 1.0)[0] == 0.0


def test_blahut_arimoto_says_when_it_did_not_converge():
    with pytest.warns(RuntimeWarning, match="stopped after 3 iterations"):
        out = blahut_arimoto(torch.tensor([[1.0, 0.0], [0.5, 0.5]]), max_iter=3)
    assert not out.converged and float(out.gap) > 1e-7


def test_amplitude_limited_capacity_brackets_the_known_limits():
    from pprl.empowerment import amplitude_limited_capacity

    # high SNR: C → log(2A) − h(N(0, σ²)) from below, and never above the power-constrained ½ log(1 + A²/σ²)
    for sigma in (0.05, 0.2, 0.5):
        c = float(amplitude_limited_capacity(sigma).capacity)
        assert c <= 0.5 * math.log1p(1 / sigma ** 2) + 1e-6
    high = float(amplitude_limited_capacity(0.05).capacity)
    assert abs(high - (math.log(2) - 0.5 * math.log(2 * math.pi * math.e * 0.05 ** 2))) < 0.15
    # low SNR: the optimal input is ±A (Smith 1971), so C equals the binary-input capacity
    sigma = 1.0
    binary = amplitude_limited_capacity(sigma, inputs=2, bins_per_std=20).capacity
    assert float(amplitude_limited_capacity(sigma, bins_per_std=20).capacity) == pytest.approx(float(binary), abs=2e-3)
    # refining the grids settles the value
    fine = float(amplitude_limited_capacity(0.2, inputs=121, bins_per_std=10).capacity)
    assert float(amplitude_limited_capacity(0.2).capacity) == pytest.approx(fine, abs=0.002)
    with pytest.raises(ValueError, match="noise_std > 0"):
        amplitude_limited_capacity(0.0)


def test_mutual_information_of_a_given_input():
    from pprl.empowerment import blahut_arimoto, mutual_information

    p = 0.1  # binary symmetric channel, uniform input: I = log 2 − H(p)
    bsc = torch.tensor([[1 - p, p], [p, 1 - p]], dtype=torch.float64)
    assert mutual_information(bsc, torch.tensor([0.5, 0.5])) == pytest.approx(
        math.log(2) + (1 - p) * math.log(1 - p) + p * math.log(p), abs=1e-12)
    z = torch.tensor([[1.0, 0.0], [0.3, 0.7]], dtype=torch.float64)  # Z-channel: at BA's input, I = capacity
    best = blahut_arimoto(z, tol=1e-10)
    assert mutual_information(z, best.input_dist) == pytest.approx(float(best.capacity), abs=1e-9)
    assert mutual_information(z, torch.tensor([1.0, 0.0])) == pytest.approx(0.0, abs=1e-12)
