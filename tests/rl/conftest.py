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
