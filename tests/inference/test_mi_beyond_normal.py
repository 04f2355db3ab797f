"""MI estimation beyond Gaussians: the closed forms of the benchmark-style tasks, the marginal
preprocessing of estimate_mi (free, since I is invariant under it, and useful), and what an
estimate says about itself (its bias class, its ceiling, a trace that has not flattened, a
critic that over-fits)."""
import math

import numpy as np
import pytest
import torch
from scipy import stats

from pprl.inference import mi_tasks as T
from pprl.inference.mi import check_convergence, estimate_mi, preprocess_columns

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL_CONCAT = dict(critic="concat", critic_options={"hidden": (16, 8)}, lr=5e-3)


def test_student_t_mi_matches_a_monte_carlo_of_its_densities():
    dx, dy, dof = 2, 3, 2.0
    x, y, mi = T.student_t(200_000, dx, dy, dof, seed=1)
    joint = stats.multivariate_t(np.zeros(dx + dy), np.eye(dx + dy), df=dof).logpdf(np.hstack([x, y]))
    px = stats.multivariate_t(np.zeros(dx), np.eye(dx), df=dof).logpdf(x)
    py = stats.multivariate_t(np.zeros(dy), np.eye(dy), df=dof).logpdf(y)
    terms = joint - px - py
    assert mi == pytest.approx(terms.mean(), abs=4 * terms.std() / math.sqrt(len(terms)))
    assert T.student_t_mi(dx, dy, 1e6) == pytest.approx(0.0, abs=1e-5)  # ν → ∞: independent Gaussians


@pytest.mark.parametrize("a", [0.1, 0.75])
def test_additive_uniform_mi_matches_its_entropies(a):
    # I = h(y) − h(ε): h(y) by numerical integration of the trapezoidal density of x + ε
    t = np.linspace(-a, 1 + a, 400_001)
    density = np.clip(np.minimum(t + a, 1 + a - t), 0, None)
    density = np.minimum(density, min(1.0, 2 * a)) / (2 * a)
    h_y = -np.trapezoid(np.where(density > 0, density * np.log(np.where(density > 0, density, 1)), 0), t)
    assert T.additive_uniform(10, a)[2] == pytest.approx(h_y - math.log(2 * a), abs=1e-4)


def test_gaussian_mi_of_a_dense_covariance():
    # dx = dy = 1: I = −½ log(1 − ρ²)
    assert T.gaussian_mi(T.dense_cov(1, 1, 0.75), 1) == pytest.approx(-0.5 * math.log(1 - 0.75 ** 2))
    with pytest.raises(ValueError, match="unknown warp"):
        T.warp(np.zeros(2), np.zeros(2), "cube")


def test_preprocessing_maps():
    g = torch.Generator().manual_seed(0)
    t = torch.cat([torch.randn(500, 1, generator=g) * 50 + 7, torch.full((500, 1), 3.0),
                   torch.randint(0, 3, (500, 1), generator=g).double()], 1).double()
    s = preprocess_columns(t, "standardize")
    torch.testing.assert_close(s[:, 0].mean(), torch.tensor(0.0, dtype=s.dtype), atol=1e-12, rtol=0)
    assert float(s[:, 0].std()) == pytest.approx(1.0) and bool((s[:, 1] == 0).all())  # constant: centred only
    c = preprocess_columns(t, "copula")
    order = torch.argsort(t[:, 0])
    assert bool((c[order, 0].diff() > 0).all())  # monotone in x
    assert float(c[:, 0].mean()) == pytest.approx(0.0, abs=1e-9) and float(c[:, 0].std()) == pytest.approx(1, abs=0.05)
    for level in range(3):  # tied values share one normal score
        assert c[t[:, 2] == level, 2].unique().numel() == 1
    with pytest.raises(ValueError, match="preprocess must be one of"):
        estimate_mi(t[:, :1], t[:, 2:], preprocess="rank", progress=False)


def test_standardising_restores_badly_scaled_data_and_every_map_keeps_the_target():
    x, y, mi = T.gaussian(6000, T.dense_cov(1, 1, 0.75), 1, seed=0)
    x = x * 1000 + 300  # a column in other units: the same I, a harder input for the critic
    est = {pre: estimate_mi(x.astype(np.float32), y.astype(np.float32), preprocess=pre, steps=1000, progress=False)
           for pre in (None, "standardize", "copula")}
    for pre in ("standardize", "copula"):
        assert abs(est[pre].value - mi) < max(0.06, 3 * est[pre].stderr), (pre, est[pre].value, mi)
        assert est[pre].preprocess == pre
    assert abs(est[None].value - mi) > abs(est["standardize"].value - mi) + 0.1


def test_rank_transform_reduces_the_error_on_a_heavy_tailed_5d_task():
    # a dense 5 + 5-d Gaussian pushed through t ↦ t³ in every coordinate: heavy tails, the same I
    x, y, mi = T.gaussian(6000, T.dense_cov(5, 5, 0.5), 5, seed=0)
    x, y = (x ** 3).astype(np.float32), (y ** 3).astype(np.float32)
    errors = {pre: abs(estimate_mi(x, y, preprocess=pre, steps=1500, progress=False, **SMALL_CONCAT).value - mi)
              for pre in ("standardize", "copula")}
    assert errors["copula"] < 0.1 and errors["copula"] < errors["standardize"] - 0.04, errors


@pytest.mark.parametrize("task", ["normal_1v1", "additive_0.75", "half_cube_1v1", "dense_3_3", "student_2_2_2"])
def test_benchmark_style_tasks_within_tolerance(task):
    n = 6000
    x, y, mi = {
        "normal_1v1": lambda: T.gaussian(n, T.dense_cov(1, 1, 0.75), 1, seed=2),
        "additive_0.75": lambda: T.additive_uniform(n, 0.75, seed=2),
        "half_cube_1v1": lambda: (*T.warp(*T.gaussian(n, T.dense_cov(1, 1, 0.75), 1, seed=2)[:2], "half_cube"),
                                  T.gaussian_mi(T.dense_cov(1, 1, 0.75), 1)),
        "dense_3_3": lambda: T.gaussian(n, T.dense_cov(3, 3, 0.5), 3, seed=2),
        "student_2_2_2": lambda: T.student_t(n, 2, 2, 2.0, seed=2),
    }[task]()
    est = estimate_mi(x.astype(np.float32), y.astype(np.float32), steps=2000, progress=False, **SMALL_CONCAT)
    # the benchmark's criterion, max(0.1 nats, 10%), plus two held-out standard errors
    assert abs(est.value - mi) <= max(0.1, 0.1 * mi) + 2 * est.stderr, (task, est.value, mi)


def test_check_convergence_reads_the_trace():
    g = np.random.default_rng(0)
    flat = 0.5 + 0.05 * g.standard_normal(2000)
    assert check_convergence(flat) is None
    rising = np.linspace(0, 1, 2000) + 0.05 * g.standard_normal(2000)
    assert "still rose" in check_convergence(rising)
    assert "fell" in check_convergence(rising[::-1])
    assert check_convergence(rising[:50]) is None  # too short to say


def test_an_estimate_states_its_bias_class_ceiling_and_warnings():
    rho, eye = 0.95, np.eye(4)
    x, y, mi = T.gaussian(4000, np.block([[eye, rho * eye], [rho * eye, eye]]), 4, seed=0)
    assert mi == pytest.approx(-2 * math.log(1 - rho ** 2)) and mi > math.log(8) + 2  # 4.7 nats
    x, y = x.astype(np.float32), y.astype(np.float32)
    capped = estimate_mi(x, y, bound="infonce", batch_size=8, steps=1500, lr=2e-3, progress=False)
    assert capped.ceiling == pytest.approx(math.log(8)) and capped.value > 0.8 * capped.ceiling
    assert capped.bias.startswith("lower bound, at most log K")
    assert any("ceiling" in note for note in capped.notes), capped.notes
    assert "sampling error only" in str(capped) and "log K = 2.079" in str(capped)
    nwj = estimate_mi(x, y, bound="nwj", steps=50, progress=False)
    assert nwj.ceiling is None and nwj.bias == "lower bound" and nwj.to_dict()["bias"] == "lower bound"
    assert estimate_mi(x, y, bound="smile", steps=20, progress=False).bias.startswith("not a bound")
    # a wide critic trained long on 600 pairs of independent 5-d noise (I = 0) memorises them: the
    # training estimate climbs, the held-out one does not, and the estimate says so
    g = np.random.default_rng(1)
    noise_x, noise_y = (g.standard_normal((1000, 5)).astype(np.float32) for _ in range(2))
    overfit = estimate_mi(noise_x, noise_y, batch_size=64, heldout=0.4, steps=2000, lr=3e-3, progress=False)
    assert overfit.value < 0.1 < overfit.trace[-200:].mean()
    assert any("over-fits" in note for note in overfit.notes), (overfit.value, overfit.notes)
