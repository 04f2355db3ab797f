"""``pprl sweep EXPERIMENT --seeds 0-9 --set intrinsic.eta=0.01,0.05 -o DIR``: seeds × settings, aggregated."""
from __future__ import annotations

from pathlib import Path

from pprl.sweeps import parse_seeds, parse_setting, sweep

from .common import CLIError, add_device_option, add_parser as _add_parser, check_device, positive_int


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "sweep", help="run an experiment over seeds and settings; one aggregated table",
                    description="Run every (setting, seed) trial of an experiment as its own pprl train run directory "
                                "(DIR/<setting>/seed<k>), skipping finished trials and continuing interrupted ones, "
                                "then write trials.csv, sweep.csv, sweep.md (IQM over seeds with bootstrap CIs) and "
                                "sweep.png.")
    p.add_argument("experiment", help="experiment spec: a YAML file or a bundled name")
    p.add_argument("--seeds", default="0-4", help="seeds: a range 0-9, a list 0,3,5, or both 0-4,9")
    p.add_argument("--set", action="append", default=[], metavar="PATH=V1,V2",
                   help="a setting to sweep, e.g. intrinsic.eta=0.01,0.05 (values read as YAML); repeat for a grid")
    p.add_argument("--backend", choices=["local", "ray"], default="local",
                   help="local: a process pool on this machine; ray: Ray Tune (pip install \"pprl[ray]\"), a local "
                        "instance unless RAY_ADDRESS names a cluster")
    p.add_argument("--jobs", type=positive_int, default=2, help="trials at once")
    p.add_argument("--steps", type=positive_int, help="env steps per trial, overriding learner.total_steps")
    p.add_argument("-o", "--output", required=True, help="sweep directory")
    add_device_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    check_device(args.device)
    try:
        seeds = parse_seeds(args.seeds)
        settings = [parse_setting(s) for s in args.set]
    except ValueError as e:
        raise CLIError(str(e)) from None
    table = sweep(args.experiment, seeds, settings, args.output, backend=args.backend, jobs=args.jobs,
                  total_steps=args.steps, device=args.device)
    print((Path(args.output) / "sweep.md").read_text().rstrip())
    print(f"wrote {args.output}/trials.csv, sweep.csv, sweep.md, sweep.png ({len(table)} runs)")
    return 0
