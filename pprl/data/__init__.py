"""Transition data: the `Transitions` container, random-policy `collect`ion from gymnasium
environments, and the FIFO `ReplayPool`."""
from .collect import collect
from .replay import ReplayPool
from .transitions import Transitions

__all__ = ["Transitions", "collect", "ReplayPool"]
