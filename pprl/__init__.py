"""pprl: probabilistic programming for information-theoretic reinforcement learning.

Declare a dynamics model and a variational family as YAML specs, fit them with Pyro, and use
the resulting posterior (and its bounds) downstream.
"""
from .rl.envs import register_envs  # noqa: E402

register_envs()

from .data import Transitions, collect  # noqa: E402
from .data.offline import OfflineDataset, load_offline  # noqa: E402
from .inference.posterior import Posterior, load_posterior  # noqa: E402
from .inference.svi import FitDiverged, fit  # noqa: E402
from .inference.latent_posterior import LatentPosterior, load_latent_posterior  # noqa: E402
from .models.latent import LatentModel, build_latent_model  # noqa: E402
from .models.dynamics import BayesianDynamics, DynamicsModel, LinearGaussianDynamics, build_model  # noqa: E402
from .spec import InferenceSpec, ModelSpec, SpecError, load_spec  # noqa: E402
from .diagnostics.compare import compare  # noqa: E402
from .inference.info_gain import InfoGain  # noqa: E402
from .inference.mi import MIEstimate, estimate_mi  # noqa: E402
from .inference.barber_agakov import barber_agakov  # noqa: E402
from .inference.mcmc import nuts  # noqa: E402
from .empowerment import Empowerment  # noqa: E402
from .rl.experiment import ExperimentSpec, load_experiment  # noqa: E402
from .rl.train import train  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Transitions", "collect", "Posterior", "load_posterior", "FitDiverged", "fit",
           "BayesianDynamics", "DynamicsModel", "LinearGaussianDynamics", "build_model",
           "InferenceSpec", "ModelSpec", "SpecError", "load_spec", "compare", "InfoGain",
           "ExperimentSpec", "load_experiment", "train", "MIEstimate", "estimate_mi", "barber_agakov", "nuts",
           "LatentPosterior", "load_latent_posterior", "LatentModel", "build_latent_model",
           "OfflineDataset", "load_offline"]
