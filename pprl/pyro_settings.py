"""The Pyro setting pprl needs, applied around its own calls instead of globally at import.

pprl keeps PyroModule parameters (a model's learned noise, a guide's locations and scales) in
their modules rather than in Pyro's global param store, so that two fits never share or
continue each other's parameters. That is Pyro's ``module_local_params`` setting; pprl turns it
on only for the duration of its own calls that build or run Pyro modules, and the user's
setting is restored on return.
"""
from __future__ import annotations

import functools

import pyro


def local_params(fn):
    """Decorator: run ``fn`` under ``pyro.settings.context(module_local_params=True)``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with pyro.settings.context(module_local_params=True):
            return fn(*args, **kwargs)
    return wrapper
