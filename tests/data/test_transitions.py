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
    with pytest.raises(ValueError, match=r"bad\.npz: missing arrays next_obs; expected obs, act, next_obs"):
        Transitions.load(bad)


def test_reward_and_flags_are_optional(tmp_path):
    """A dynamics fit reads obs, act, next_obs only: the rest defaults to 0 / False."""
    t = Transitions(torch.ones(3, 2), torch.zeros(3, 1), torch.ones(3, 2))
    assert t.reward.tolist() == [0.0] * 3 and t.terminated.dtype == torch.bool and not t.truncated.any()
    path = tmp_path / "plain.npz"
    np.savez(path, obs=np.ones((3, 2)), act=np.zeros((3, 1)), next_obs=np.ones((3, 2)))
    assert Transitions.load(path) == t


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


def _arrays(n: int = 6) -> dict:
    t = _toy(n)
    return {name: getattr(t, name).numpy() for name in ("obs", "act", "next_obs", "reward", "terminated", "truncated")}


def _savez(path, **arrays):
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


@pytest.mark.parametrize("change, fragments", [
    ({"obs": np.arange(12).reshape(6, 2)}, ["array 'obs' has dtype int64", "floating point", "(bool)"]),
    ({"terminated": np.zeros(6)}, ["array 'terminated' has dtype float64", "terminated, truncated [N] (bool)"]),
    ({"next_obs": np.zeros((6, 3), np.float32)}, ["obs and next_obs must have the same shape"]),
    ({"reward": np.zeros(4, np.float32)}, ["share the leading length N"]),
    ({"obs": np.array([None] * 6, dtype=object)}, ["array 'obs' is not a plain numeric array"]),
    ({"meta": np.array("{not json")}, ["array 'meta' is not the JSON string"]),
])
def test_load_errors_name_the_file_and_what_is_expected(tmp_path, change, fragments):
    path = _savez(tmp_path / "bad.npz", **{**_arrays(), **change})
    with pytest.raises(ValueError) as info:
        Transitions.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize("content", [b"obs,act\n1,2\n", b"", b"PK\x03\x04broken zip"])
def test_load_of_a_file_that_is_not_an_npz_names_it(tmp_path, content):
    path = tmp_path / "data.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="not an .npz archive of transitions") as info:
        Transitions.load(path)
    assert str(path) in str(info.value) and "allow_pickle" not in str(info.value)
    np.save(tmp_path / "one.npy", np.zeros(3))  # a single .npy array is not an archive either
    with pytest.raises(ValueError, match="not an .npz archive"):
        Transitions.load(tmp_path / "one.npy")


def test_load_reads_float64_as_float32(tmp_path):
    arrays = _arrays()
    path = _savez(tmp_path / "f64.npz", **{**arrays, "obs": arrays["obs"].astype(np.float64)})
    data = Transitions.load(path)
    assert data.obs.dtype == torch.float32 and data == _toy(6) and data.meta == {}
