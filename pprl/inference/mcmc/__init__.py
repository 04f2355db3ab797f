"""NUTS reference posteriors (NumPyro/JAX) for the same declared dynamics models."""
from .nuts import nuts, run_nuts

__all__ = ["nuts", "run_nuts"]
