"""Empowerment: channels p(s_K | s, a_{1:K}), their exact capacities (Blahut–Arimoto, water-filling)
and the variational estimator (Mohamed & Rezende 2015)."""
from .channels import ACTIONS, GridWorld, LinearGaussianChannel, TabularChannel
from .exact import Capacity, blahut_arimoto, exact, linear_gaussian_empowerment, water_filling
from .exact import water_filling_batched
from .latent_gaussian import LatentGaussianChannel
from .spec import load_channel, parse_channel
from .variational import Empowerment

__all__ = ["ACTIONS", "GridWorld", "LinearGaussianChannel", "TabularChannel", "Capacity", "blahut_arimoto", "exact",
           "linear_gaussian_empowerment", "water_filling", "Empowerment", "load_channel", "parse_channel",
           "water_filling_batched", "LatentGaussianChannel"]
