"""Reinforcement learning: sparse-reward environments and a generic training loop over three
plug-ins, each chosen by ``type`` in the experiment spec: the learner (``learners/``: PPO), the
intrinsic reward (``intrinsic/``: none, VIME) and auxiliary losses (``auxiliary/``)."""
