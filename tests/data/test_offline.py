"""Offline datasets in the D4RL layout: a round trip through .npz and HDF5, a file a user brings
(written with h5py alone, as D4RL's are), episode returns, normalised scores and bad files."""
import h5py
import numpy as np
import pytest
import torch

import pprl
from pprl.data.offline import OfflineDataset, load_offline, save_offline


def small_dataset():
    data = pprl.collect("Pendulum-v1", 450, seed=0)  # Pendulum episodes: 200 steps, ending in a timeout
    return OfflineDataset(data, env_id="Pendulum-v1", kind="random", ref_min_score=-1200.0, ref_max_score=-150.0)


@pytest.mark.parametrize("suffix", [".npz", ".hdf5"])
def test_round_trip(tmp_path, suffix):
    data = small_dataset()
    back = load_offline(save_offline(tmp_path / f"d{suffix}", data))
    for name in ("obs", "act", "next_obs", "reward", "terminated", "truncated"):
        assert torch.equal(getattr(back.transitions, name), getattr(data.transitions, name)), name
    assert (back.env_id, back.kind, back.ref_min_score, back.ref_max_score) == ("Pendulum-v1", "random", -1200.0, -150.0)
    returns = back.episode_returns()
    assert len(returns) == 2  # two complete 200-step episodes; the last 50 steps are no episode
    rewards = data.transitions.reward.numpy().astype(np.float64)
    np.testing.assert_allclose(returns, [rewards[:200].sum(), rewards[200:400].sum()], rtol=1e-6)
    np.testing.assert_allclose(back.normalized_score([-1200.0, -150.0, -675.0]), [0.0, 100.0, 50.0])


def test_a_d4rl_file_written_by_h5py_loads(tmp_path):
    n = 10
    with h5py.File(tmp_path / "halfcheetah_medium-v2.hdf5", "w") as f:  # D4RL's own layout: keys, no attributes
        for key, shape in (("observations", (n, 17)), ("actions", (n, 6)), ("next_observations", (n, 17))):
            f[key] = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        f["rewards"], f["terminals"], f["timeouts"] = np.ones(n), np.zeros(n, bool), np.eye(n, dtype=bool)[-1]
        f["infos/qpos"] = np.zeros((n, 9))  # extra keys are ignored
    data = load_offline(tmp_path / "halfcheetah_medium-v2.hdf5")
    assert len(data) == n and data.transitions.obs.shape == (n, 17) and data.env_id is None
    assert data.episode_returns().tolist() == [10.0]
    with pytest.raises(ValueError, match="no reference returns"):
        data.normalized_score([1.0])


def test_bad_files_are_one_clear_error(tmp_path):
    np.savez(tmp_path / "partial.npz", observations=np.zeros((3, 2)), actions=np.zeros((3, 1)))
    with pytest.raises(ValueError, match="missing rewards, next_observations, terminals, timeouts"):
        load_offline(tmp_path / "partial.npz")
    np.savez(tmp_path / "ragged.npz", observations=np.zeros((3, 2)), actions=np.zeros((2, 1)), rewards=np.zeros(3),
             next_observations=np.zeros((3, 2)), terminals=np.zeros(3), timeouts=np.zeros(3))
    with pytest.raises(ValueError, match="every key must have 3 rows"):
        load_offline(tmp_path / "ragged.npz")
    with pytest.raises(ValueError, match="unknown dataset format '.csv'"):
        load_offline((tmp_path / "d.csv").resolve().touch() or tmp_path / "d.csv")
    with pytest.raises(FileNotFoundError):
        load_offline(tmp_path / "none.npz")
