"""``pprl empowerment CHANNEL --horizon K -o DIR``: a gridworld's empowerment map, exact beside
variational; for a continuous channel (pendulum, learned) the linearised estimate beside the
variational bound, on a (θ, θ̇) grid for the pendulum or on ``--states FILE.npz``."""
from __future__ import annotations

from pathlib import Path

from .common import (CLIError, add_device_option, add_parser as _add_parser, add_quiet_option, add_seed_option,
                     add_threads_option, check_device, positive_int, write_json)


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "empowerment", help="empowerment of every cell of a gridworld channel",
                    description="K-step empowerment of every cell of a gridworld channel (channels/*.yaml or a "
                                "shipped name such as open_grid): exact by Blahut–Arimoto and the variational "
                                "lower bound (pprl.Empowerment). Writes empowerment.png (exact, variational, "
                                "their difference), cells.csv (per cell) and summary.json. For a continuous "
                                "channel (pendulum, learned): the linearised estimate and the variational bound "
                                "per state, states.csv, empowerment.png and summary.json.")
    p.add_argument("channel", help="channel spec: a YAML file (channels/*.yaml) or a shipped name")
    p.add_argument("--horizon", type=positive_int, default=2, help="K, the number of actions in a sequence")
    p.add_argument("--fit-steps", type=positive_int, default=600, help="training steps of the variational estimator")
    p.add_argument("--states", help="continuous channels: an .npz whose 'obs' array [N, obs_dim] holds the states to "
                                    "evaluate (a pendulum channel defaults to a 41×41 (θ, θ̇) grid)")
    p.add_argument("--num-samples", type=positive_int, default=512,
                   help="continuous channels: Monte-Carlo draws per state of the variational bound")
    p.add_argument("--nominal-points", type=positive_int, default=1,
                   help="continuous channels: the linearised estimate's tangent is taken at the action box's centre "
                        "(1) or at the best of n constant actions spread over the box")
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
    from pprl.empowerment.continuous import is_continuous_channel
    from pprl.threads import torch_threads

    check_device(args.device)
    channel = load_channel(args.channel)
    if is_continuous_channel(channel):
        return run_continuous(args, channel)
    if args.states is not None:
        raise CLIError(f"--states applies to continuous channels; {args.channel} is a {type(channel).__name__}")
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



def run_continuous(args, channel) -> int:
    """Linearised and variational empowerment of a continuous channel at a set of states."""
    import math

    import numpy as np
    import pandas as pd
    import torch
    from matplotlib.figure import Figure

    from pprl import Empowerment
    from pprl.empowerment.continuous import PendulumChannel, linearised_empowerment
    from pprl.threads import torch_threads

    from .common import load_npz

    grid = None
    if args.states is not None:
        arrays = load_npz(args.states)
        if "obs" not in arrays:
            raise CLIError(f"{args.states}: no 'obs' array (the states to evaluate, [N, {channel.obs_dim}])")
        states = torch.as_tensor(arrays["obs"], dtype=torch.float32)
        if states.dim() != 2 or states.shape[1] != channel.obs_dim or not torch.isfinite(states).all():
            raise CLIError(f"{args.states}: 'obs' must be finite and [N, {channel.obs_dim}], got "
                           f"{tuple(states.shape)}")
    elif isinstance(channel, PendulumChannel):
        n = 41
        th, thd = torch.meshgrid(torch.linspace(-math.pi, math.pi, n), torch.linspace(-8, 8, n), indexing="ij")
        states, grid = torch.stack([th.cos(), th.sin(), thd], -1).reshape(-1, 3), n
    else:
        raise CLIError(f"{args.channel}: a {type(channel).__name__} needs --states FILE.npz (an 'obs' array)")
    per_action = channel.power_per_action
    if per_action is None:
        per_action = float(((channel.action_high - channel.action_low) ** 2 / 12).sum())
    power = args.horizon * per_action
    with torch_threads(args.threads):
        linear = linearised_empowerment(channel, states, args.horizon, power,
                                        nominal_points=args.nominal_points).double()
        est = Empowerment(channel, args.horizon, states=states, lr=3e-3, seed=args.seed, device=args.device)
        est.fit(args.fit_steps, progress=not args.quiet)
        value, stderr = (x.cpu().double() for x in est.estimate(states, num_samples=args.num_samples))
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(states.numpy(), columns=[f"obs{i}" for i in range(channel.obs_dim)])
    table["linearised"], table["variational"], table["stderr"] = linear.numpy(), value.numpy(), stderr.numpy()
    table.to_csv(out / "states.csv", index=False)
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    if grid is not None:
        for ax, values, title in ((axes[0], linear, "linearised"), (axes[1], value, "variational bound")):
            im = ax.imshow(values.reshape(grid, grid).T.numpy(), origin="lower", extent=[-math.pi, math.pi, -8, 8],
                           aspect="auto", cmap="viridis")
            ax.set(title=f"{title}, K = {args.horizon}×{channel.repeat} (nats)", xlabel="θ (0 = upright)",
                   ylabel="θ̇")
            fig.colorbar(im, ax=ax, fraction=0.046)
    else:
        axes[0].hist(linear.numpy(), bins=40, alpha=0.6, label="linearised")
        axes[0].hist(value.numpy(), bins=40, alpha=0.6, label="variational")
        axes[0].set(xlabel="nats", ylabel="states", title=f"empowerment of {len(states)} states, K = {args.horizon}")
        axes[0].legend()
        axes[1].scatter(linear.numpy(), value.numpy(), s=4)
        axes[1].set(xlabel="linearised (nats)", ylabel="variational bound (nats)", title="per state")
    fig.tight_layout()
    fig.savefig(out / "empowerment.png", dpi=110)
    spread = len(states) > 1 and float(linear.std()) > 0 and float(value.std()) > 0
    corr = float(np.corrcoef(linear.numpy(), value.numpy())[0, 1]) if spread else float("nan")
    summary = {"channel": str(args.channel), "horizon": args.horizon, "states": len(states), "power": power,
               "linearised_mean": float(linear.mean()), "linearised_max": float(linear.max()),
               "variational_mean": float(value.mean()), "variational_max": float(value.max()),
               "nominal_points": args.nominal_points, "correlation": corr, "fit_steps": args.fit_steps,
               "seed": args.seed,
               "argmax_linearised": states[int(linear.argmax())].tolist(),
               "argmax_variational": states[int(value.argmax())].tolist()}
    write_json(out / "summary.json", summary)
    print(f"K = {args.horizon}: linearised empowerment {float(linear.min()):.3f} … {float(linear.max()):.3f} nats, "
          f"variational bound {float(value.min()):.3f} … {float(value.max()):.3f} over {len(states)} states "
          f"(correlation {corr:.2f})")
    print(f"wrote {out / 'empowerment.png'}, {out / 'states.csv'} and {out / 'summary.json'}")
    return 0
