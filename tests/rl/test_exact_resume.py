"""Resume that is exact (issue 18 item 5): a training run killed with SIGKILL after its second
checkpoint and resumed ends with the metrics of the uninterrupted run of the same seed (bitwise on
the CPU, wall times aside); a half-written checkpoint is never what a resume loads."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import pprl
from tests.rl.conftest import TINY

REPO = Path(__file__).resolve().parents[2]
CHILD = """
import json, sys, time
import pprl
from pprl.rl.learners import PPO, SAC
spec, out = json.loads(sys.argv[1]), sys.argv[2]
def slowed(update):
    def slow_update(self, *args, **kwargs):  # time for the parent to kill it between checkpoints
        time.sleep(0.15)
        return update(self, *args, **kwargs)
    return slow_update
PPO.update, SAC.update = slowed(PPO.update), slowed(SAC.update)
pprl.train(spec, seed=3, out_dir=out, progress=False, checkpoint_every=2)
"""


SAC_TINY = {"name": "tiny_sac", "env": "Pendulum-v1", "intrinsic": {"type": "none"},
            "learner": {"type": "sac", "num_steps": 32, "learning_starts": 64, "batch_size": 32, "hidden_sizes": [16],
                        "total_steps": 12 * 32}}


@pytest.mark.parametrize("spec", [
    {**TINY, "intrinsic": {"type": "none"}, "learner": {**TINY["learner"], "total_steps": 12 * 128}},
    {**TINY, "learner": {**TINY["learner"], "total_steps": 12 * 128}},
    SAC_TINY], ids=["ppo", "vime", "sac"])
def test_sigkill_then_resume_equals_the_uninterrupted_run(tmp_path, spec):  # 12 iterations each
    pprl.train(spec, seed=3, out_dir=tmp_path / "full", progress=False, threads=1)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(spec), str(tmp_path / "killed")], env=env)
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline and child.poll() is None:
        if ckpt.is_file():
            try:
                if len(torch.load(ckpt, weights_only=True)["metrics"]) >= 4:  # the second checkpoint
                    break
            except Exception:
                pass  # being replaced right now: atomic rename, so try again
        time.sleep(0.05)
    assert child.poll() is None, "the run finished before it could be killed"
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert not (tmp_path / "killed" / "summary.json").exists()
    done = len(torch.load(ckpt, weights_only=True)["metrics"])
    assert 4 <= done < 12
    pprl.train(None, out_dir=tmp_path / "killed", resume=True, progress=False, threads=1)
    full, resumed = (pd.read_csv(tmp_path / d / "metrics.csv").drop(columns="wall_s") for d in ("full", "killed"))
    pd.testing.assert_frame_equal(resumed, full, check_exact=True)
    episodes = [pd.read_csv(tmp_path / d / "episodes.csv") for d in ("full", "killed")]
    pd.testing.assert_frame_equal(*episodes, check_exact=True)
    assert not list((tmp_path / "killed").glob("*.tmp"))  # no half-written file left to be mistaken for a checkpoint


def test_an_environment_that_cannot_be_pickled_is_said_once_and_resumes_from_a_reset():
    import numpy as np

    from pprl.rl.envs.vector import EpisodeTracker, ResumeWarning, env_state, load_env_state, make_vector_env

    envs = make_vector_env("CartPole-v1", 2)
    obs, _ = envs.reset(seed=0)
    envs.envs[0].unwrapped.hook = lambda: None  # e.g. a user's env holding a callback
    with pytest.warns(ResumeWarning, match="cannot be saved .*restarts their episodes from a reset"):
        state = env_state(envs, obs, EpisodeTracker(2))
    assert state == {} and load_env_state(envs, EpisodeTracker(2), state) is None
    envs.close()
