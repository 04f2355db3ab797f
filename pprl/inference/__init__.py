"""Variational families, the SVI loop, fitted posteriors, information gain and MI bounds."""
from .families import FAMILIES, Family, make_family, make_guide, register_family
from .posterior import Posterior, load_posterior
from .svi import FitDiverged, fit, analytic_kl_loss

__all__ = ["FAMILIES", "Family", "make_family", "make_guide", "register_family", "Posterior", "load_posterior",
           "FitDiverged", "fit", "analytic_kl_loss"]
