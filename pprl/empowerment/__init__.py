"""Empowerment: channels p(s_K | s, a_{1:K}) and their exact capacities (Blahut–Arimoto, water-filling)."""
from .channels import ACTIONS, GridWorld, LinearGaussianChannel, TabularChannel
from .exact import Capacity, blahut_arimoto, exact, linear_gaussian_empowerment, water_filling

__all__ = ["ACTIONS", "GridWorld", "LinearGaussianChannel", "TabularChannel", "Capacity", "blahut_arimoto", "exact",
           "linear_gaussian_empowerment", "water_filling"]
