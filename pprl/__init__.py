"""pprl: probabilistic programming for information-theoretic reinforcement learning.

Declare a dynamics model and a variational family as YAML specs, fit them with Pyro, and use
the resulting posterior (and its bounds) downstream.
"""
from .data import Transitions, collect
from .inference.posterior import Posterior, load_posterior
from .inference.svi import FitDiverged, fit
from .models.dynamics import BayesianDynamics, DynamicsModel, LinearGaussianDynamics, build_model
from .spec import InferenceSpec, ModelSpec, SpecError, load_spec
from .diagnostics.compare import compare

__version__ = "0.1.0"
__all__ = ["Transitions", "collect", "Posterior", "load_posterior", "FitDiverged", "fit",
           "BayesianDynamics", "DynamicsModel", "LinearGaussianDynamics", "build_model",
           "InferenceSpec", "ModelSpec", "SpecError", "load_spec", "compare"]
