"""Pyro models: Bayesian dynamics (BNN, linear-Gaussian)."""
from .dynamics import BayesianDynamics, DynamicsModel, LinearGaussianDynamics, build_model

__all__ = ["BayesianDynamics", "DynamicsModel", "LinearGaussianDynamics", "build_model"]
