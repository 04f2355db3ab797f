"""One thread policy for every pprl entry point, applied around the call and undone after it.

pprl's tensors are small (a BNN of a few thousand weights, minibatches of hundreds, PPO's MLPs):
one torch thread is fastest, and torch's default (one per core) spin-waits badly when anything
else shares the cores — the same fit or training run becomes many times slower (measured in
``benchmarks/RESULTS.md`` and issue 12), and the thread count also changes floating-point summation order,
so the numbers of a seeded run depend on it. Every public call that trains or samples
therefore takes ``threads`` (default :data:`DEFAULT_THREADS`) and runs under
:func:`torch_threads`; ``threads=None`` keeps whatever the caller has set. The CLI passes its
``--threads`` the same way, so the same seed gives the same numbers from Python and the shell.
"""
from __future__ import annotations

import functools
import inspect
from contextlib import contextmanager
from contextvars import ContextVar

import torch

DEFAULT_THREADS = 1
_inside = ContextVar("pprl_threads_inside", default=False)  # within a pprl entry point already
_UNSET = object()


def check_threads(threads: int | None) -> int | None:
    """``threads`` if it is None or an integer >= 1, else a ValueError."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
        raise ValueError(f"threads must be an integer >= 1 or None (keep torch's setting), got {threads!r}")
    return threads


@contextmanager
def torch_threads(threads: int | None = DEFAULT_THREADS):
    """``with torch_threads(n): ...`` — torch uses ``n`` intra-op threads inside the block and the
    caller's count again after it (``None``: leave the setting alone)."""
    check_threads(threads)
    before = torch.get_num_threads()
    if threads is not None and threads != before:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


def uses_threads(fn):
    """Decorator for public entry points: adds the keyword ``threads`` and runs ``fn`` under
    :func:`torch_threads`. Left unset it means :data:`DEFAULT_THREADS` at the outermost pprl call
    and "inherit" inside one (``train`` refitting with ``fit`` keeps ``train``'s setting)."""
    @functools.wraps(fn)
    def wrapper(*args, threads=_UNSET, **kwargs):
        if threads is _UNSET:
            threads = None if _inside.get() else DEFAULT_THREADS
        token = _inside.set(True)
        try:
            with torch_threads(threads):
                return fn(*args, **kwargs)
        finally:
            _inside.reset(token)

    sig = inspect.signature(fn)
    params = list(sig.parameters.values())
    extra = inspect.Parameter("threads", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_THREADS,
                              annotation="int | None")
    at = len(params) - int(bool(params) and params[-1].kind is inspect.Parameter.VAR_KEYWORD)
    wrapper.__signature__ = sig.replace(parameters=params[:at] + [extra] + params[at:])
    return wrapper
