"""Transition data: the `Transitions` container, random-policy `collect`ion from gymnasium
environments, and the FIFO `ReplayPool`."""
from .collect import collect
from .replay import ReplayPool
from .transitions import Transitions
from .windows import k_step_windows

__all__ = ["Transitions", "collect", "ReplayPool", "k_step_windows"]
