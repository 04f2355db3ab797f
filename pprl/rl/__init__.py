"""Reinforcement learning: sparse-reward environments, the intrinsic-reward interface and a
compact PPO learner."""
