"""A tiny VIME experiment (two iterations of 2 × 64 steps) shared by the RL tests."""

TINY = {
    "name": "tiny_vime",
    "env": "pprl/SparseMountainCar-v0",
    "learner": {"num_envs": 2, "num_steps": 64, "total_steps": 256, "num_minibatches": 2, "update_epochs": 2},
    "intrinsic": {"type": "vime", "model": "bnn_dynamics", "family": "mean_field", "eta": 0.1,
                  "fit_steps": 5, "initial_fit_steps": 20, "num_samples": 2},
}


def with_intrinsic(**changes) -> dict:
    return {**TINY, "intrinsic": {**TINY["intrinsic"], **changes}}


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def pendulum_sac():
    """SAC trained on Pendulum-v1 for 8,000 steps (small networks; about 40 s on one thread): the
    solved-environment check and the behaviour policy of the offline tests' expert data."""
    import torch

    from pprl.rl.learners import SAC, SACConfig

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    sac = SAC("Pendulum-v1", SACConfig(num_steps=200, learning_starts=1000, total_steps=8000, hidden_sizes=(64, 64),
                                       batch_size=128), seed=0)
    while sac.global_step < 8000:
        stats = sac.update(sac.collect())
    torch.set_num_threads(before)
    yield sac, stats
    sac.close()
