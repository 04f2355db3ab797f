"""Transition data: the `Transitions` container, random-policy `collect`ion from gymnasium
environments, image transitions (`collect_frames`, `Frames`), the FIFO `ReplayPool`, and offline datasets in
the D4RL layout (`load_offline`, `save_offline`)."""
from .collect import collect
from .frames import Frames, collect_frames
from .offline import OfflineDataset, load_offline, save_offline
from .replay import ReplayPool
from .sequences import Sequences, split_episodes, to_sequences
from .transitions import Transitions
from .windows import k_step_windows

__all__ = ["Transitions", "collect", "Frames", "collect_frames", "ReplayPool", "k_step_windows",
           "Sequences", "to_sequences", "split_episodes", "OfflineDataset", "load_offline", "save_offline"]
