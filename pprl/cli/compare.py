"""``pprl compare MODEL INFERENCE... --data FILE -o DIR``: fit several families, one table and figure."""
from __future__ import annotations

from pathlib import Path

from pprl import compare
from pprl.diagnostics.compare import plot_comparison
from pprl.spec import as_inference_spec, as_model_spec

from .common import add_fit_options, add_parser as _add_parser, check_device, train_test


def add_parser(subparsers) -> None:
    p = _add_parser(subparsers, "compare", help="fit several families and compare them",
                    description="Fit several variational families to one dynamics model on the same data; "
                                "writes comparison.csv, comparison.png, posterior_<family>.pt and <family>.nc "
                                "(ArviZ InferenceData on the held-out transitions). With --nuts, a NUTS "
                                "reference posterior joins them and the output is the report instead: "
                                "report.md/csv (PSIS-LOO, k̂, coverage, each family's predictive distance to "
                                "NUTS), comparison.png, loo_compare.png, calibration.png, intervals.png and "
                                "<family>.nc.")
    p.add_argument("model", help="model spec: a YAML file (models/*.yaml) or a bundled name such as bnn_dynamics")
    p.add_argument("inference", nargs="+", help="inference specs (YAML files) or family names, e.g. mean_field low_rank")
    add_fit_options(p)
    p.add_argument("--nuts", nargs="?", const="nuts", metavar="SPEC",
                   help="add a NUTS reference posterior (the bundled 'nuts' spec, or an inference spec of "
                        "family nuts) and write the full report")
    p.set_defaults(func=run)


def run(args) -> int:
    check_device(args.device)
    mspec = as_model_spec(args.model)
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
