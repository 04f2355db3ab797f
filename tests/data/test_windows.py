"""k_step_windows: windows match a hand-built list, never cross a terminal, a truncation or an
unflagged reset, follow each env's stream in time-major vector-env data, and reject bad input."""
import pytest
import torch

from pprl.data import Transitions, k_step_windows


def numbered(n: int, terminated=(), truncated=(), num_envs: int | None = None) -> Transitions:
    """Row t: obs = [t], act = [10 t], next_obs = [t + 1] (continuous, so only the flags cut)."""
    t = torch.arange(n, dtype=torch.float32)[:, None]
    term, trunc = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    term[list(terminated)], trunc[list(truncated)] = True, True
    meta = {} if num_envs is None else {"num_envs": num_envs}
    return Transitions(t, 10 * t, t + 1, terminated=term, truncated=trunc, meta=meta)


def as_lists(windows):
    s, a, s_K = windows
    return [(float(s[i, 0]), a[i, :, 0].tolist(), float(s_K[i, 0])) for i in range(s.shape[0])]


def test_hand_built_windows():
    data = numbered(8, terminated=[2], truncated=[5])  # episodes: rows 0–2, 3–5, 6–7
    assert as_lists(k_step_windows(data, 2)) == [
        (0.0, [0.0, 10.0], 2.0), (1.0, [10.0, 20.0], 3.0),   # ends on the terminal row: allowed
        (3.0, [30.0, 40.0], 5.0), (4.0, [40.0, 50.0], 6.0),
        (6.0, [60.0, 70.0], 8.0)]
    assert as_lists(k_step_windows(data, 3)) == [(0.0, [0.0, 10.0, 20.0], 3.0), (3.0, [30.0, 40.0, 50.0], 6.0)]
    assert len(as_lists(k_step_windows(data, 4))) == 0  # no episode is 4 steps long
    s, a, s_K = k_step_windows(data, 1)  # one step: every row, flags or not
    assert torch.equal(s, data.obs) and torch.equal(a[:, 0], data.act) and torch.equal(s_K, data.next_obs)
    s, a, s_K = k_step_windows(data, 4)
    assert s.shape == (0, 1) and a.shape == (0, 4, 1) and s_K.shape == (0, 1)


def rollout_with_a_terminal(seed: int = 0):
    """Two episodes of a 2-D random walk in one stream; the first terminates at row 6 of 15 and the
    second starts far away. obs[:, 1] holds the episode id."""
    g = torch.Generator().manual_seed(seed)
    obs, act, nxt, term = [], [], [], []
    for episode, length in ((0, 7), (1, 8)):
        x = torch.tensor([100.0 * episode, float(episode)])
        for t in range(length):
            a = torch.randn(1, generator=g)
            x2 = x + torch.tensor([float(a), 0.0])
            obs.append(x), act.append(a), nxt.append(x2), term.append(episode == 0 and t == length - 1)
            x = x2
    return torch.stack(obs), torch.stack(act), torch.stack(nxt), torch.tensor(term)


@pytest.mark.parametrize("horizon", [2, 3, 5])
def test_windows_never_cross_a_terminal(horizon):
    obs, act, nxt, term = rollout_with_a_terminal()
    s, a, s_K = k_step_windows(Transitions(obs, act, nxt, terminated=term), horizon)
    assert s.shape[0] == (7 - horizon + 1) + (8 - horizon + 1)
    assert torch.equal(s[:, 1], s_K[:, 1])  # same episode at both ends
    # the random walk's end is its start plus the window's actions, so no window skips a reset
    torch.testing.assert_close(s_K[:, 0], s[:, 0] + a[:, :, 0].sum(1))
    # without the flag, the reset (next_obs[6] != obs[7]) still cuts; with the check off it does not
    s2, _, s_K2 = k_step_windows(Transitions(obs, act, nxt), horizon)
    assert torch.equal(s2, s) and torch.equal(s_K2, s_K)
    s3, _, s_K3 = k_step_windows(Transitions(obs, act, nxt), horizon, check_continuity=False)
    assert s3.shape[0] == 15 - horizon + 1 and not torch.equal(s3[:, 1], s_K3[:, 1])


def test_truncation_cuts_even_when_the_states_continue():
    data = numbered(6, truncated=[2])  # next_obs[2] == obs[3], yet a new episode starts at row 3
    assert [w[0] for w in as_lists(k_step_windows(data, 2))] == [0.0, 1.0, 3.0, 4.0]


def test_time_major_vector_env_streams():
    """Two envs interleaved (row t·2 + i is step t of env i), as pprl.data.collect writes them."""
    steps = 5
    obs = torch.tensor([[100.0 * i + t] for t in range(steps) for i in range(2)])
    act = obs.clone()
    trunc = torch.zeros(2 * steps, dtype=torch.bool)
    trunc[2 * 2 + 1] = True  # env 1 ends its episode at its step 2
    data = Transitions(obs, act, obs + 1, truncated=trunc, meta={"num_envs": 2})
    got = as_lists(k_step_windows(data, 2))
    assert sorted(got) == sorted([(float(t), [float(t), t + 1.0], t + 2.0) for t in range(steps - 1)]
                                 + [(100.0 + t, [100.0 + t, 101.0 + t], 102.0 + t) for t in (0, 1, 3)])
    assert k_step_windows(data, 2, stride=1)[0].shape[0] == 0  # read as one stream, every row is a reset


def test_bad_input():
    data = numbered(4)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        k_step_windows(data, 0)
    with pytest.raises(ValueError, match="horizon must be an integer >= 1"):
        k_step_windows(data, 2.0)
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        k_step_windows(data, 2, stride=0)
    with pytest.raises(ValueError, match="needs a Transitions object"):
        k_step_windows((data.obs, data.act, data.next_obs), 2)
