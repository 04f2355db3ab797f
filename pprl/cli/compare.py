"""``pprl compare MODEL INFERENCE... --data FILE -o DIR``: fit several families, one table and figure."""
from __future__ import annotations

from pathlib import Path

from pprl import compare
from pprl.diagnostics.compare import plot_comparison
from pprl.models.latent_spec import GUIDES, LatentSpec
from pprl.spec import as_inference_spec, as_model_spec

from .common import CLIError, add_fit_options, add_parser as _add_parser, check_device, positive_int, train_test


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "compare", help="fit several families and compare them",
                    description="Fit several variational families to one dynamics model on the same data; "
                                "writes comparison.csv, comparison.png, posterior_<family>.pt and <family>.nc "
                                "(ArviZ InferenceData on the held-out transitions). With --nuts, a NUTS "
                                "reference posterior joins them and the output is the report instead: "
                                "report.md/csv (PSIS-LOO, k̂, coverage, each family's predictive distance to "
                                "NUTS), comparison.png, loo_compare.png, calibration.png, intervals.png and "
                                "<family>.nc. For a latent model (type: latent) the rows are its guides "
                                "(--guides): comparison.csv/png with held-out ELBO, reconstruction and K-step "
                                "errors, and with --nuts each guide's gap to a NUTS reference of its states.")
    p.add_argument("model", help="model spec: a YAML file (models/*.yaml) or a bundled name such as bnn_dynamics")
    p.add_argument("inference", nargs="+", help="inference specs (YAML files) or family names, e.g. mean_field low_rank")
    add_fit_options(p)
    p.add_argument("--nuts", nargs="?", const="nuts", metavar="SPEC",
                   help="add a NUTS reference posterior (the bundled 'nuts' spec, or an inference spec of "
                        "family nuts) and write the full report")
    p.add_argument("--guides", nargs="+", metavar="GUIDE",
                   help="latent models: the guide structures to compare (default: per_step filtering smoothing)")
    p.add_argument("--num-sequences", type=positive_int, default=8,
                   help="latent models with --nuts: held-out windows whose states NUTS samples")
    p.set_defaults(func=run)


def run(args) -> int:
    check_device(args.device)
    mspec = as_model_spec(args.model)
    if isinstance(mspec, LatentSpec):
        return run_latent(args, mspec)
    if args.guides:
        raise CLIError(f"--guides is for latent models (type: latent); {mspec.name!r} is a {mspec.type!r} model")
    for f in args.inference + ([args.nuts] if args.nuts else []):
        as_inference_spec(f)
    train, test = train_test(args)
    if args.nuts:
        return run_report(mspec, args.inference, args.nuts, train, test, Path(args.output), args)
    run_compare(mspec, args.inference, train, test, Path(args.output), steps=args.steps, seed=args.seed,
                device=args.device, quiet=args.quiet, threads=args.threads)
    return 0


def run_report(model, families, nuts, train, test, out: Path, args) -> int:
    """``compare --nuts``: the families and NUTS, with the report of :func:`pprl.diagnostics.report.family_report`."""
    from pprl.diagnostics.report import family_report

    table = family_report(model, families, train, test, nuts=nuts, steps=args.steps, seed=args.seed,
                          device=args.device, out_dir=out, progress=not args.quiet, threads=args.threads)
    cols = ["test_log_pred", "elpd_loo", "pareto_k", "coverage_90", "w2_to_nuts", "wall_time_s"]
    print(table[cols].to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"wrote {out / 'report.md'} (with its figures and one <family>.nc each)")
    return 0


def run_compare(model, families, train, test, out: Path, *, steps, seed, device, quiet, threads) -> None:
    """Fit every family, write posterior_<family>.pt, comparison.csv and comparison.png, print the table
    (also used by ``pprl demo families``)."""
    specs = [as_inference_spec(f) for f in families]  # check every spec before fitting any
    out.mkdir(parents=True, exist_ok=True)
    table, posteriors = compare(model, specs, train, test, steps=steps, seed=seed, device=device,
                                progress=not quiet, return_posteriors=True, threads=threads)
    for name, post in posteriors.items():
        post.save(out / f"posterior_{name}.pt")
        post.to_inference_data(test, num_samples=500, seed=seed).to_netcdf(out / f"{name}.nc")
    tmp = out / "comparison.csv.tmp"
    table.to_csv(tmp)
    tmp.replace(out / "comparison.csv")
    figure = plot_comparison(table, posteriors, out / "comparison.png")
    with_cols = ["elbo", "train_log_pred", "test_log_pred", "prior_log_pred", "wall_time_s"]
    print(table[with_cols].to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"wrote {out / 'comparison.csv'}, {figure}, posterior_<family>.pt and <family>.nc")


def run_latent(args, mspec: LatentSpec) -> int:
    """``pprl compare`` for a latent model: one row per guide (:func:`pprl.diagnostics.compare_latent.compare_guides`)."""
    from pprl.data import Transitions
    from pprl.data.sequences import split_held_out
    from pprl.diagnostics.compare_latent import compare_guides, plot_guides
    from pprl.threads import torch_threads

    if len(args.inference) != 1:
        raise CLIError(f"a latent model is compared across its guides (--guides) with one inference spec, got "
                       f"{len(args.inference)}: {' '.join(args.inference)}")
    guides = args.guides or list(GUIDES)
    nuts = None
    if args.nuts:
        nspec = as_inference_spec(args.nuts)
        sampler = {"num_samples", "num_warmup", "num_chains", "max_tree_depth", "target_accept"}
        if set(nspec.options) != sampler:
            raise CLIError(f"--nuts {args.nuts}: an inference spec of family nuts (the sampler's options "
                           f"{', '.join(sorted(sampler))}), got family {nspec.family!r}")
        nuts = dict(nspec.options)
    data = Transitions.load(args.data)
    try:
        if args.test_data:
            train, test = train_test(args)
        else:
            train, test = split_held_out(data, args.test_fraction, seed=args.seed)
        out = Path(args.output)
        with torch_threads(args.threads):
            table, posteriors = compare_guides(mspec, guides, train, test, inference=args.inference[0],
                                               steps=args.steps, seed=args.seed, device=args.device,
                                               nuts=nuts, num_sequences=args.num_sequences,
                                               progress=not args.quiet, out_dir=out,
                                               return_posteriors=True)
    except ValueError as exc:
        raise CLIError(f"{args.model}: {exc}") from None
    out.mkdir(parents=True, exist_ok=True)
    for guide, post in posteriors.items():
        post.save(out / f"posterior_{guide}.pt")
    table.to_csv(out / "comparison.csv")
    plot_guides(table, out / "comparison.png")
    cols = [c for c in ("held_out_elbo", "reconstruction_mse", "prediction_mse_K", "mean_error_sd", "sd_ratio",
                        "r_hat_max", "wall_time_s") if c in table]
    print(table[cols].to_string(float_format=lambda v: f"{v:.3g}"))
    print(f"wrote {out / 'comparison.csv'}, {out / 'comparison.png'} and posterior_<guide>.pt")
    return 0
