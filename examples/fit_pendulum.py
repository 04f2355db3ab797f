"""Fit the BNN dynamics model to random Pendulum-v1 transitions with two variational families
and compare their held-out log predictive density.

    python examples/fit_pendulum.py [--steps 2000] [--device cpu]
"""
import argparse

import pprl

parser = argparse.ArgumentParser()
parser.add_argument("--steps", type=int, default=2000)
parser.add_argument("--device", default="cpu")
args = parser.parse_args()

data = pprl.collect("Pendulum-v1", 6000, seed=0)
train, test = data.split(0.2, seed=0)
for family in ("mean_field", "laplace"):
    post = pprl.fit("models/bnn_dynamics.yaml", family, train, steps=args.steps, seed=0, device=args.device)
    print(f"{family:>10}: held-out log predictive {post.log_predictive(test):.3f} nats/transition "
          f"(prior predictive {post.prior_log_predictive(test):.1f}), {post.info['wall_time_s']:.1f} s")
