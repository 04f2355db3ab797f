"""`ReplayPool`: a FIFO pool of the last transitions, for methods that learn from recent data."""
from __future__ import annotations

import torch

from .transitions import _TENSOR_FIELDS as FIELDS, Transitions


class ReplayPool:
    """A FIFO pool of the last ``capacity`` transitions (a ring buffer of preallocated tensors)."""

    def __init__(self, capacity: int):
        self.capacity, self.size, self.cursor = int(capacity), 0, 0
        self.data: Transitions | None = None

    def add(self, batch: Transitions) -> None:
        batch = batch[-self.capacity:] if len(batch) > self.capacity else batch
        if self.data is None:
            empty = lambda t: t.new_zeros(self.capacity, *t.shape[1:])
            self.data = Transitions(*(empty(getattr(batch, n)) for n in FIELDS))
        idx = (self.cursor + torch.arange(len(batch))) % self.capacity
        for name in FIELDS:
            getattr(self.data, name)[idx] = getattr(batch, name).to(getattr(self.data, name).device)
        self.cursor = (self.cursor + len(batch)) % self.capacity
        self.size = min(self.size + len(batch), self.capacity)

    def contents(self) -> Transitions:
        return self.data[:self.size]

    def state_dict(self) -> dict:
        fields = {} if self.data is None else {n: getattr(self.data, n)[:self.size].clone() for n in FIELDS}
        return {"capacity": self.capacity, "cursor": self.cursor, "size": self.size, **fields}

    def load_state_dict(self, state: dict) -> None:
        self.__init__(state["capacity"])
        if state["size"]:
            self.add(Transitions(*(state[n] for n in FIELDS)))
            self.cursor = state["cursor"]
