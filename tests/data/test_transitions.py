"""The Transitions container: indexing, device copies, seeded splits, concat, save/load, validation."""

import numpy as np
import pytest
import torch

from pprl.data import Transitions


def _toy(n: int = 10) -> Transitions:
    ids = torch.arange(n, dtype=torch.float32)
    return Transitions(
        obs=torch.stack([ids, -ids], 1),
        act=ids[:, None],
        next_obs=torch.stack([ids + 1, -ids - 1], 1),
        reward=ids * 0.5,
        terminated=ids % 3 == 0,
        truncated=ids % 4 == 0,
    )


def test_save_keeps_exact_path_without_suffix(tmp_path):
    path = _toy().save(tmp_path / "data.bin")
    assert path.is_file() and Transitions.load(path) == _toy()


def test_load_missing_file_and_missing_keys(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        Transitions.load(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    np.savez_compressed(bad, obs=np.zeros((2, 3)), act=np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"bad\.npz.*next_obs.*reward.*terminated.*truncated"):
        Transitions.load(bad)


def test_getitem_slice_index_mask():
    t = _toy(10)
    assert torch.equal(t[2:5].obs[:, 0], torch.tensor([2.0, 3.0, 4.0]))
    assert torch.equal(t[torch.tensor([7, 1])].reward, torch.tensor([3.5, 0.5]))
    masked = t[t.terminated]
    assert len(masked) == 4 and masked.terminated.all()
    assert t[[0, 9]].obs_dim == 2
    with pytest.raises(TypeError):
        t[3]


def test_to_device_copies():
    t = _toy()
    moved = t.to("cpu")
    assert moved == t and moved.obs is not t.obs
    assert moved.obs.data_ptr() != t.obs.data_ptr()


def test_split_sizes_disjoint_deterministic():
    t = _toy(50)
    train, test = t.split(0.2, seed=5)
    assert (len(train), len(test)) == (40, 10)
    train_ids, test_ids = set(train.obs[:, 0].tolist()), set(test.obs[:, 0].tolist())
    assert train_ids.isdisjoint(test_ids) and train_ids | test_ids == set(range(50))
    # rows stay aligned across fields
    assert torch.equal(train.next_obs[:, 0], train.obs[:, 0] + 1)
    again_train, _ = t.split(0.2, seed=5)
    assert again_train == train
    assert t.split(0.2, seed=6)[0] != train


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, 0.01, 0.99])
def test_split_bad_fraction(fraction):
    with pytest.raises(ValueError):
        _toy(10).split(fraction)


def test_concat_inverts_slicing():
    t = _toy(10)
    assert Transitions.concat([t[:3], t[3:7], t[7:]]) == t
    train, test = t.split(0.3)
    assert len(Transitions.concat([train, test])) == 10
    with pytest.raises(ValueError):
        Transitions.concat([])


def test_validation_rejects_bad_shapes():
    t = _toy(4)
    fields = dict(obs=t.obs, act=t.act, next_obs=t.next_obs, reward=t.reward,
                  terminated=t.terminated, truncated=t.truncated)
    with pytest.raises(ValueError, match="reward"):
        Transitions(**{**fields, "reward": torch.zeros(5)})
    with pytest.raises(ValueError, match="next_obs"):
        Transitions(**{**fields, "next_obs": torch.zeros(4, 3)})
    with pytest.raises(ValueError, match="obs"):
        Transitions(**{**fields, "obs": torch.zeros(4), "next_obs": torch.zeros(4)})
    with pytest.raises(ValueError, match="terminated"):
        Transitions(**{**fields, "terminated": torch.zeros(4, 1, dtype=torch.bool)})
    with pytest.raises(ValueError, match="act"):
        Transitions(**{**fields, "act": np.zeros((4, 1))})
