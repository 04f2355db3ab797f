"""Pyro models: Bayesian dynamics (BNN, linear-Gaussian); a convolutional image encoder."""
from .dynamics import BayesianDynamics, DynamicsModel, LinearGaussianDynamics, build_model
from .encoders import ConvEncoder

__all__ = ["BayesianDynamics", "DynamicsModel", "LinearGaussianDynamics", "build_model", "ConvEncoder"]
