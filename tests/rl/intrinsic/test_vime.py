"""VIME's bonus: information gain divided by the recent (or peak) batch median, and the refit of
its posterior on the replay pool."""
import pytest
import torch

import pprl
from pprl.rl.experiment import load_experiment
from pprl.rl.intrinsic import VIME
from pprl.spec import SpecError
from tests.rl.conftest import with_intrinsic


def test_vime_rewards_are_median_normalised_and_refit_on_the_pool():
    spec = load_experiment(with_intrinsic(median_window=2)).intrinsic
    data = pprl.collect("pprl/SparseMountainCar-v0", 1024, seed=0)
    vime = VIME(spec, data.obs_dim, data.act_dim, seed=0)
    first = vime.reward(data[:512])
    assert first.shape == (512,) and torch.isfinite(first).all()
    assert first.median() == pytest.approx(1.0, rel=1e-5)  # divided by its own median
    posterior = vime.info_gain.posterior
    stats = vime.update(data[:512])
    assert vime.pool.size == 512 and vime.info_gain.posterior is not posterior
    assert torch.isfinite(torch.tensor(stats["elbo_per_transition"]))
    raw = vime.info_gain(data[512:]).float()
    second = vime.reward(data[512:])
    m1, m2 = vime.medians  # the last k = 2 batch medians; their mean is the divisor
    torch.testing.assert_close(second, raw / ((m1 + m2) / 2))


def test_peak_bonus_scale_divides_by_the_largest_recent_median():
    spec = load_experiment(with_intrinsic(median_window=1, bonus_scale="peak", fit_steps=0)).intrinsic
    data = pprl.collect("pprl/SparseMountainCar-v0", 1536, seed=0)
    vime = VIME(spec, data.obs_dim, data.act_dim, seed=0)
    medians, rewards = [], []
    for part in (data[:512], data[512:1024], data[1024:]):
        raw = vime.info_gain(part).float() if vime.info_gain is not None else None
        rewards.append(vime.reward(part))
        raw = vime.info_gain(part).float() if raw is None else raw
        medians.append(float(raw.median()))
        torch.testing.assert_close(rewards[-1], raw / max(medians))
    with pytest.raises(SpecError, match="allowed: recent, peak"):
        load_experiment(with_intrinsic(bonus_scale="max"))
