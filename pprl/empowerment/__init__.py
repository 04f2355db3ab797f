"""Empowerment: channels p(s_K | s, a_{1:K}), their exact capacities (Blahut–Arimoto, water-filling)
and the estimators: variational (Mohamed & Rezende 2015), linearised, latent linear-Gaussian
(Zhao et al. 2021), and a fitted latent world model's own transition as a channel."""
from .channels import ACTIONS, GridWorld, LinearGaussianChannel, TabularChannel
from .continuous import AmplitudeLimitedChannel, PendulumChannel, PosteriorChannel, linearised_empowerment
from .exact import (Capacity, amplitude_limited_capacity, amplitude_limited_matrix, mutual_information, blahut_arimoto, exact, linear_gaussian_empowerment,
                    water_filling, water_filling_batched)
from .latent_gaussian import LatentGaussianChannel
from .latent_model_channel import LatentModelChannel
from .spec import load_channel, parse_channel
from .variational import Empowerment

__all__ = ["ACTIONS", "GridWorld", "LinearGaussianChannel", "TabularChannel", "AmplitudeLimitedChannel",
           "PendulumChannel", "PosteriorChannel", "linearised_empowerment", "Capacity", "amplitude_limited_capacity", "amplitude_limited_matrix", "mutual_information",
           "blahut_arimoto", "exact", "linear_gaussian_empowerment", "water_filling", "water_filling_batched",
           "Empowerment", "load_channel", "parse_channel", "LatentGaussianChannel", "LatentModelChannel"]
