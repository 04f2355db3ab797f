"""Comparison tables and plots."""
from .compare import compare, plot_comparison

__all__ = ["compare", "plot_comparison"]
