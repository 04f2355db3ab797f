"""``pprl train EXPERIMENT -o DIR`` or ``pprl train --resume DIR``: a learner with an intrinsic reward."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import torch
import yaml

from pprl import load_experiment, train
from pprl.bundled import bundled
from pprl.threads import DEFAULT_THREADS

from .common import (CLIError, add_device_option, add_parser as _add_parser, add_quiet_option, add_seed_option,
                     add_threads_option, component_device, positive_int)


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "train", help="run an experiment spec: PPO with an intrinsic reward",
                    description="Run an experiment spec (environment, learner, intrinsic reward) and write "
                                "metrics.csv, episodes.csv, checkpoint.pt, learning_curve.png and summary.json. "
                                "Ctrl-C saves a checkpoint and prints the command that continues the run.")
    p.add_argument("experiment", nargs="?",
                   help="experiment spec: a YAML file (examples/*.yaml) or a bundled name such as vime_mountaincar")
    add_seed_option(p, "the environments, the networks and the minibatches")
    p.add_argument("-o", "--output", help="output directory (default: runs/NAME-seedSEED)")
    p.add_argument("--resume", metavar="DIR", help="continue the stopped run in DIR (its spec and seed are read "
                                                   "from DIR/checkpoint.pt)")
    p.add_argument("--steps", type=positive_int,
                   help="total env steps of the run, overriding the spec's learner.total_steps (with --resume: "
                        "must exceed the steps the run has done)")
    add_device_option(p, components=True)
    add_threads_option(p)
    add_quiet_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    if args.experiment is None and args.resume is None:
        raise CLIError("pprl train needs an experiment spec (pprl train EXPERIMENT.yaml -o DIR; bundled: "
                       f"{', '.join(bundled('examples'))}) or --resume DIR to continue a stopped run")
    if args.experiment is not None and args.resume is not None:
        raise CLIError(f"give an experiment spec or --resume DIR, not both (got {args.experiment} and "
                       f"--resume {args.resume})")
    if args.resume is not None and args.output is not None:
        raise CLIError(f"--resume continues the run in its own directory ({args.resume}); drop -o {args.output}")
    device = component_device(args.device)
    if args.resume is not None:
        spec, seed, out = None, 0, Path(args.resume)
    else:
        spec = load_experiment(args.experiment)  # all spec errors before anything is written
        seed, out = args.seed, Path(args.output) if args.output else Path("runs") / f"{spec.name}-seed{args.seed}"
    try:
        summary = train(spec, seed=seed, out_dir=out, resume=spec is None, device=device,
                        progress=not args.quiet, total_steps=args.steps, threads=args.threads)
    except KeyboardInterrupt:
        return interrupted(out, args)
    print_summary(summary, out)
    return 0


def interrupted(out: Path, args) -> int:
    """After Ctrl-C in ``train`` or ``demo``: whether ``pprl.train`` left a checkpoint in ``out`` (it saves
    one when interrupted), the progress, and the exact command that continues the run; exit status 130."""
    ckpt = out / "checkpoint.pt"
    if not ckpt.is_file():
        print(f"pprl: interrupted before the first checkpoint; nothing to resume in {out}", file=sys.stderr)
        return 130
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    done = int(state["metrics"][-1]["env_steps"]) if state["metrics"] else 0
    total = int(yaml.safe_load((out / "spec.yaml").read_text())["learner"]["total_steps"])
    command = ["pprl", "train", "--resume", str(out), "--steps", str(total)]
    if args.device != "cpu":
        command += ["--device", args.device]
    if args.threads != DEFAULT_THREADS:
        command += ["--threads", str(args.threads)]
    print(f"pprl: interrupted at {done} of {total} env steps; checkpoint saved in {ckpt}", file=sys.stderr)
    print(f"pprl: continue with: {shlex.join(command)}", file=sys.stderr)
    return 130


def print_summary(summary: dict, out: Path) -> None:
    """The end-of-run lines of ``train`` and ``demo``: success, the intrinsic reward's health
    measures at the end (whatever it declares), what was written."""
    first = summary["first_success_step"]
    print(f"{summary['experiment']} (seed {summary['seed']}): {summary['env_steps']} env steps, "
          f"{summary['episodes']} episodes, success rate {summary['success_rate']:.2f} "
          f"(last 10%: {summary['final_success_rate']:.2f}), "
          f"{f'first success at step {first}' if first is not None else 'never reached the goal'}, "
          f"{summary['env_steps_per_s']:.0f} env steps/s")
    health = [f"{label} {summary['final_' + key]:.3g}" for key, label in summary.get("health", {}).items()
              if summary.get("final_" + key) is not None]
    if health:
        print(f"{summary['intrinsic']} at the end: " + ", ".join(health))
    print(f"wrote {out}/metrics.csv, learning_curve.png, checkpoint.pt, summary.json")
