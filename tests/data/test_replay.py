"""ReplayPool: a FIFO ring buffer of transitions that survives a weights-only checkpoint."""
import torch

from pprl.data import ReplayPool
from tests.conftest import linear_system


def test_replay_pool_is_fifo():
    pool = ReplayPool(5)
    data = linear_system(8)
    pool.add(data[:3])
    pool.add(data[3:8])
    kept = pool.contents()
    assert len(kept) == 5
    assert {tuple(r) for r in kept.obs.tolist()} == {tuple(r) for r in data[3:8].obs.tolist()}


def test_replay_pool_state_round_trip(tmp_path):
    """A pool restored from torch.load(weights_only=True) holds the same rows and overwrites the
    same (oldest) slot next."""
    data = linear_system(12)
    pool = ReplayPool(5)
    pool.add(data[:7])
    torch.save(pool.state_dict(), tmp_path / "pool.pt")
    restored = ReplayPool(1)
    restored.load_state_dict(torch.load(tmp_path / "pool.pt", weights_only=True))
    assert (restored.size, restored.cursor) == (pool.size, pool.cursor)
    assert restored.contents() == pool.contents()
    pool.add(data[7:9]), restored.add(data[7:9])
    assert restored.contents() == pool.contents()
