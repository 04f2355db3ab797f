"""Sparse-reward benchmarks from VIME (Houthooft et al., 2016, "VIME: Variational Information
Maximizing Exploration", Sec. 4): the extrinsic reward is 0 almost everywhere, so a policy
gradient method without an exploration bonus rarely sees a single non-zero reward.

``register_envs()`` (called by ``import pprl``) registers with gymnasium:

==========================  =====================================================  =========
id                          reward                                                 horizon
==========================  =====================================================  =========
pprl/SparseMountainCar-v0   1 on the step the car reaches the goal (then ends)     500
pprl/CartPoleSwingUp-v0     1 per step with cos θ > 0.8 and |x| <= 3               500
pprl/SparseHalfCheetah-v0   1 per step with torso x > 5                            1000
==========================  =====================================================  =========

Every step's ``info["is_success"]`` says whether the sparse condition held on that step.

Besides them (``GRID_ENV_IDS``): ``pprl/GridRoom-v0``, a walled gridworld with reward 0 and a
100-step horizon, where empowerment is the only drive (:mod:`pprl.rl.envs.grid_room`), and
``pprl/GridRoomPixels-v0``, the same room observed as images (:mod:`pprl.rl.envs.pixels`).

``PIXEL_ENV_IDS``: the sparse tasks and Pendulum-v1 observed as numpy-rendered images
(``pprl/SparseMountainCarPixels-v0``, ``pprl/CartPoleSwingUpPixels-v0``, ``pprl/PendulumPixels-v0``,
with the horizons of the envs they observe), plus ``pprl/GridRoomPixels-v0``; each takes
``size`` (``cell_size`` for the grid) and ``frames`` (the number of stacked frames).

``pprl/MiniGrid-v0`` (``env_kwargs: {task: MiniGrid-DoorKey-5x5-v0}``): a MiniGrid task observed as
its symbolic 7×7 image, channels first (:mod:`pprl.rl.envs.minigrid`; the ``minigrid`` extra).
"""
import gymnasium as gym

__all__ = ["register_envs", "ENV_IDS", "GRID_ENV_IDS", "PIXEL_ENV_IDS"]

_SPECS = {
    "pprl/SparseMountainCar-v0": ("pprl.rl.envs.sparse_mountain_car:SparseMountainCarEnv", 500),
    "pprl/CartPoleSwingUp-v0": ("pprl.rl.envs.cartpole_swingup:CartPoleSwingUpEnv", 500),
    "pprl/SparseHalfCheetah-v0": ("pprl.rl.envs.sparse_half_cheetah:SparseHalfCheetahEnv", 1000),
}
ENV_IDS = tuple(_SPECS)
_GRID_SPECS = {
    "pprl/GridRoom-v0": ("pprl.rl.envs.grid_room:GridRoomEnv", 100),
    "pprl/GridRoomPixels-v0": ("pprl.rl.envs.pixels:make_grid_room_pixels", 100),
}
GRID_ENV_IDS = tuple(_GRID_SPECS)
_PIXEL_SPECS = {
    "pprl/SparseMountainCarPixels-v0": ("pprl.rl.envs.pixels:make_sparse_mountain_car_pixels", 500),
    "pprl/CartPoleSwingUpPixels-v0": ("pprl.rl.envs.pixels:make_cartpole_swingup_pixels", 500),
    "pprl/PendulumPixels-v0": ("pprl.rl.envs.pixels:make_pendulum_pixels", 200),
}
PIXEL_ENV_IDS = ("pprl/GridRoomPixels-v0", *_PIXEL_SPECS)
# MiniGrid tasks as images (needs the ``minigrid`` extra; MiniGrid sets its own time limits)
_MINIGRID_SPECS = {"pprl/MiniGrid-v0": ("pprl.rl.envs.minigrid:make_minigrid", None)}


def register_envs() -> None:
    """Register the sparse-reward environments, the gridworlds and the pixel envs with gymnasium; calling it again is a no-op.

    Nothing heavy is imported here: each entry point is loaded by ``gym.make``, so a missing
    MuJoCo only matters to ``gym.make("pprl/SparseHalfCheetah-v0")``.
    """
    for env_id, (entry_point, horizon) in {**_SPECS, **_GRID_SPECS, **_PIXEL_SPECS, **_MINIGRID_SPECS}.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=horizon)
