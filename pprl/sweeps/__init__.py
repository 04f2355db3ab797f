"""Sweeps: one experiment over seeds × settings (``pprl sweep``), on a local process pool or Ray Tune."""
from .grid import Trial, make_trials, parse_seeds, parse_setting
from .sweep import MEASURES, iqm, iqm_ci, sweep

__all__ = ["sweep", "Trial", "make_trials", "parse_seeds", "parse_setting", "iqm", "iqm_ci", "MEASURES"]
