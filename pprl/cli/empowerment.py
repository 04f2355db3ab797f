"""``pprl empowerment CHANNEL --horizon K -o DIR``: a gridworld's empowerment map, exact beside variational."""
from __future__ import annotations

from pathlib import Path

from .common import (CLIError, add_device_option, add_parser as _add_parser, add_quiet_option, add_seed_option,
                     add_threads_option, check_device, positive_int, write_json)


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "empowerment", help="empowerment of every cell of a gridworld channel",
                    description="K-step empowerment of every cell of a gridworld channel (channels/*.yaml or a "
                                "shipped name such as open_grid): exact by Blahut–Arimoto and the variational "
                                "lower bound (pprl.Empowerment). Writes empowerment.png (exact, variational, "
                                "their difference), cells.csv (per cell) and summary.json.")
    p.add_argument("channel", help="channel spec: a YAML file (channels/*.yaml) or a shipped name")
    p.add_argument("--horizon", type=positive_int, default=2, help="K, the number of actions in a sequence")
    p.add_argument("--fit-steps", type=positive_int, default=600, help="training steps of the variational estimator")
    p.add_argument("-o", "--output", required=True, help="output directory (created if missing)")
    add_seed_option(p, "the variational estimator")
    add_device_option(p)
    add_threads_option(p)
    add_quiet_option(p)
    p.set_defaults(func=run)


def run(args) -> int:
    import pandas as pd
    import torch
    from matplotlib.figure import Figure

    from pprl import Empowerment
    from pprl.empowerment import exact, load_channel
    from pprl.threads import torch_threads

    check_device(args.device)
    channel = load_channel(args.channel)
    if not hasattr(channel, "cells"):
        raise CLIError(f"{args.channel}: pprl empowerment maps gridworld channels; this is a "
                       f"{type(channel).__name__} (use pprl.empowerment.linear_gaussian_empowerment)")
    sequences = channel.num_actions ** args.horizon
    if sequences * channel.num_states ** 2 * 8 > 2e9:
        raise CLIError(f"--horizon {args.horizon}: the exact channel holds {sequences} action sequences per cell "
                       f"({sequences * channel.num_states ** 2 * 8 / 1e9:.1f} GB); use a smaller horizon")
    out = Path(args.output)
    ref = exact(channel, args.horizon)
    with torch_threads(args.threads):
        est = Empowerment(channel, args.horizon, seed=args.seed, device=args.device)
        est.fit(args.fit_steps, progress=not args.quiet)
        value, stderr = est.estimate(torch.arange(channel.num_states))
    value, stderr, truth = value.cpu().double(), stderr.cpu().double(), ref.capacity.cpu()
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame({"row": [r for r, _ in channel.cells], "col": [c for _, c in channel.cells],
                          "exact": truth.numpy(), "variational": value.numpy(), "stderr": stderr.numpy(),
                          "error": (value - truth).numpy()})
    table.to_csv(out / "cells.csv", index=False)
    fig = Figure(figsize=(12, 3.8))
    axes = fig.subplots(1, 3)
    vmax = float(truth.max())
    for ax, values, title in ((axes[0], truth, "exact (Blahut–Arimoto)"), (axes[1], value, "variational bound")):
        im = ax.imshow(channel.grid(values).numpy(), vmin=0, vmax=vmax, cmap="viridis")
        ax.set_title(f"{title}, K = {args.horizon} (nats)", fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046)
    err = channel.grid(value - truth).numpy()
    bound = max(1e-3, float(abs(value - truth).max()))
    im = axes[2].imshow(err, vmin=-bound, vmax=bound, cmap="RdBu")
    axes[2].set_title("variational − exact (nats)", fontsize=10)
    fig.colorbar(im, ax=axes[2], fraction=0.046)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(out / "empowerment.png", dpi=110)
    summary = {"channel": str(args.channel), "horizon": args.horizon, "cells": channel.num_states,
               "action_sequences": sequences, "exact_max": float(truth.max()), "exact_min": float(truth.min()),
               "mean_abs_error": float((value - truth).abs().mean()), "max_abs_error": float((value - truth).abs().max()),
               "max_above_exact": float((value - truth).max()), "fit_steps": args.fit_steps, "seed": args.seed,
               "blahut_arimoto_converged": bool(ref.converged)}
    write_json(out / "summary.json", summary)
    print(f"K = {args.horizon}: exact empowerment {summary['exact_min']:.3f} … {summary['exact_max']:.3f} nats over "
          f"{channel.num_states} cells; variational mean |error| {summary['mean_abs_error']:.4f}, max "
          f"{summary['max_abs_error']:.4f} nats")
    print(f"wrote {out / 'empowerment.png'}, {out / 'cells.csv'} and {out / 'summary.json'}")
    return 0

