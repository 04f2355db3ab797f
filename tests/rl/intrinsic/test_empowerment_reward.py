"""Empowerment as the intrinsic reward (issue 14, item 4): the bonus is the exact capacity of the
cell reached, the env's dynamics are the channel's, an agent paid by empowerment alone moves to the
centre of the walled room, and a block that does not describe the env is one SpecError."""
import math

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

import pprl
from pprl.cli import main
from pprl.data import Transitions
from pprl.empowerment import GridWorld, exact
from pprl.rl.envs.grid_room import ROOM_7X7, cells_to_obs, free_cells, plot_visitation, visitation
from pprl.rl.experiment import load_experiment, parse_experiment
from pprl.rl.intrinsic import EmpowermentReward, EmpowermentSpec, make_intrinsic
from pprl.rl.learners import make_learner
from pprl.spec import SpecError

EXAMPLE = "walled_room_empowerment"
CELLS = free_cells(ROOM_7X7)
CENTRE = np.array([max(abs(r - 4), abs(c - 4)) <= 1 for r, c in CELLS])           # the central 3×3 block
CORNERS = np.array([min(r - 1, 7 - r) <= 1 and min(c - 1, 7 - c) <= 1 for r, c in CELLS])  # four 2×2 blocks
ROOM_5X5 = ["#######"] + ["#.....#"] * 5 + ["#######"]


def transitions(cells_from, actions, cells_to, layout=ROOM_7X7) -> Transitions:
    return Transitions(obs=torch.from_numpy(cells_to_obs(np.array(cells_from), layout)),
                       act=torch.eye(5)[torch.tensor(actions)],
                       next_obs=torch.from_numpy(cells_to_obs(np.array(cells_to), layout)))


def test_reward_is_the_exact_capacity_of_the_next_cell():
    bonus = make_intrinsic(EmpowermentSpec(eta=1.0, horizon=3), obs_dim=2, act_dim=5)
    # corner N into the wall, corner E, centre E, centre stay, edge S (actions N, S, E, W, stay = 0..4)
    batch = transitions([(1, 1), (1, 1), (4, 4), (4, 4), (1, 4)], [0, 2, 2, 4, 1],
                        [(1, 1), (1, 2), (4, 5), (4, 4), (2, 4)])
    r = bonus.reward(batch)
    capacity = exact(GridWorld(list(ROOM_7X7)), 3).capacity
    index = [CELLS.index(c) for c in [(1, 1), (1, 2), (4, 5), (4, 4), (2, 4)]]
    torch.testing.assert_close(r, capacity[index].float())
    assert r[0] == pytest.approx(math.log(10), abs=1e-5) and r[3] == pytest.approx(math.log(25), abs=1e-5)
    assert bonus.stats["empowerment"] == pytest.approx(float(r.mean()))
    assert bonus.update(batch) == {} and set(bonus.health) == {"empowerment"}


def test_variational_table_is_close_to_exact():
    spec = EmpowermentSpec(horizon=2, method="variational", fit_steps=300, num_samples=2048)
    variational = EmpowermentReward(spec, seed=0).table
    reference = exact(GridWorld(list(ROOM_7X7)), 2).capacity.float()
    assert (variational - reference).abs().mean() < 0.1
    assert (variational - reference).max() < 0.05  # a lower bound, up to Monte-Carlo error


def test_env_dynamics_are_the_channel():
    """From the edge cell (1, 4) with slip 0.4, the env's next-cell frequencies per action match
    GridWorld's kernel row, and info["cell"] indexes GridWorld.cells."""
    slip, start = 0.4, (1, 4)
    env = gym.make("pprl/GridRoom-v0", slip=slip, start=list(start))
    kernel = GridWorld(list(ROOM_7X7), slip).kernel
    s = CELLS.index(start)
    n = 600
    for a in range(5):
        counts = np.zeros(len(CELLS))
        env.reset(seed=a)
        for _ in range(n):
            env.reset()
            _, reward, term, trunc, info = env.step(a)
            counts[info["cell"]] += 1
            assert reward == 0.0 and not term
        assert np.abs(counts / n - kernel[s, a].numpy()).max() < 0.07
    obs, info = gym.make("pprl/GridRoom-v0").reset(seed=0)
    assert info["cell"] == 0 and np.allclose(obs, [1 / 8, 1 / 8])  # the default start: the top-left corner


def share(counts: np.ndarray, where: np.ndarray) -> float:
    return float(counts[where].sum() / counts.sum())


def test_empowerment_agent_prefers_the_centre(tmp_path):
    """The bundled example with a 12,000-step budget (seed 0): 4,000 steps of the final policy
    (5 episodes per env, each from the corner start) spend a much larger share in the central 3×3
    block, and a much smaller one in the corner 2×2 blocks, than a uniform-random policy does."""
    spec = load_experiment(EXAMPLE)
    summary = pprl.train(spec, seed=0, out_dir=tmp_path / "run", progress=False, total_steps=12_000)
    assert summary["final_empowerment"] > 3.0
    learner = make_learner(spec.learner, spec.env, seed=0, env_kwargs=spec.env_kwargs)
    learner.load_state_dict(torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["learner"])
    trained = visitation(torch.cat([learner.collect().transitions.next_obs for _ in range(5)]).numpy(), ROOM_7X7)
    learner.close()
    random = visitation(pprl.collect(spec.env, 4000, seed=0, num_envs=8).next_obs.numpy(), ROOM_7X7)
    shares = {name: (share(trained, where), share(random, where)) for name, where in
              (("centre", CENTRE), ("corners", CORNERS))}
    assert shares["centre"][0] > 2 * shares["centre"][1], shares
    assert shares["corners"][0] < shares["corners"][1] / 2, shares
    assert shares["centre"][0] > shares["corners"][0], shares
    table = EmpowermentReward(spec.intrinsic).table
    png = plot_visitation(trained, table, ROOM_7X7, tmp_path / "visits.png", title="trained")
    assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_spec_round_trips_and_bad_blocks_are_spec_errors():
    spec = load_experiment(EXAMPLE)
    assert spec.intrinsic.type == "empowerment" and spec.env == "pprl/GridRoom-v0"
    assert parse_experiment(spec.to_dict()).to_dict() == spec.to_dict()
    assert parse_experiment(spec.to_dict()).intrinsic == spec.intrinsic
    base = spec.to_dict()
    for block, field in (({"method": "blahut"}, "intrinsic.method"), ({"horizon": 0}, "intrinsic.horizon"),
                         ({"slip": 1.5}, "intrinsic.slip"), ({"layout": ["#.", "#"]}, "intrinsic.layout")):
        with pytest.raises(SpecError, match=field) as err:
            parse_experiment({**base, "intrinsic": {**base["intrinsic"], **block}}, "x.yaml")
        assert "\n" not in str(err.value)


@pytest.mark.parametrize("env_kwargs, field", [({"layout": ROOM_5X5}, "intrinsic.layout"),
                                               ({"slip": 0.5}, "intrinsic.layout/slip")])
def test_a_block_that_is_not_the_envs_channel_is_a_spec_error(tmp_path, env_kwargs, field, capsys):
    data = {**load_experiment(EXAMPLE).to_dict(), "env_kwargs": env_kwargs}
    data["learner"]["total_steps"] = 800
    with pytest.raises(SpecError, match=field) as err:
        pprl.train(data, out_dir=tmp_path / "run", progress=False)
    assert "\n" not in str(err.value)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["train", str(path), "-o", str(tmp_path / "cli"), "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and field in lines[0]
