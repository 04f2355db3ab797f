"""Variational families, the SVI loop, Laplace, and fitted posteriors."""
from .families import make_guide
from .posterior import Posterior, load_posterior
from .svi import FitDiverged, fit, analytic_kl_loss

__all__ = ["make_guide", "Posterior", "load_posterior", "FitDiverged", "fit", "analytic_kl_loss"]
