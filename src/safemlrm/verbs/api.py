"""The Python API; each function mirrors a CLI verb."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from safemlrm.core.config import RunConfig, load_config, parse_config
from safemlrm.core.records import RunData
from safemlrm.core.shard import Shard
from safemlrm.core.store import load_run
from safemlrm.pipeline.plan import Plan, dry_run
from safemlrm.pipeline.runner import RunResult, generate_config, judge_run, run_config, stored_config

DEMO_CONFIG = "demo.yaml"


def default_run_dir(config: RunConfig) -> Path:
    return Path("runs") / config.name


def run(
    config: str | Path | RunConfig,
    out: str | Path | None = None,
    *,
    overrides: list[str] | None = None,
    progress: bool = False,
    shard: str | Shard | None = None,
) -> RunResult:
    """Run (or resume) an evaluation; `safemlrm run CONFIG --out RUN_DIR [--shard i/n]`."""
    cfg, run_dir, base_dir, part = _invocation(config, out, overrides, shard)
    return run_config(cfg, run_dir, base_dir=base_dir, progress=progress, shard=part)


def generate(
    config: str | Path | RunConfig,
    out: str | Path | None = None,
    *,
    overrides: list[str] | None = None,
    progress: bool = False,
    shard: str | Shard | None = None,
) -> RunResult:
    """Stages attack, generate and parse (or resume them); `safemlrm generate CONFIG --out RUN_DIR`."""
    cfg, run_dir, base_dir, part = _invocation(config, out, overrides, shard)
    return generate_config(cfg, run_dir, base_dir=base_dir, progress=progress, shard=part)


def judge(
    run_dir: str | Path,
    config: str | Path | RunConfig | None = None,
    *,
    overrides: list[str] | None = None,
    progress: bool = False,
) -> RunResult:
    """Stage judge over a run's stored generations, with its own judges or those of ``config``
    (or resume it); `safemlrm judge RUN_DIR [--config CONFIG]`. Calls no target."""
    judging, base_dir = _config_and_base(config, overrides) if config is not None else (None, Path.cwd())
    cfg = stored_config(Path(run_dir), judging)
    return judge_run(cfg, Path(run_dir), base_dir=base_dir, progress=progress)


def plan(
    config: str | Path | RunConfig,
    out: str | Path | None = None,
    *,
    overrides: list[str] | None = None,
    shard: str | Shard | None = None,
) -> Plan:
    """What a run (or one shard of it) would do after the store's cache; `safemlrm run CONFIG --dry-run`."""
    cfg, run_dir, base_dir, part = _invocation(config, out, overrides, shard)
    return dry_run(cfg, run_dir, base_dir=base_dir, shard=part)


def demo_config(overrides: list[str] | None = None) -> RunConfig:
    text = (resources.files("safemlrm") / "data" / "demo" / DEMO_CONFIG).read_text(encoding="utf-8")
    return parse_config(text, source=f"safemlrm/data/demo/{DEMO_CONFIG}", overrides=overrides)


def demo(out: str | Path = "demo-run", *, overrides: list[str] | None = None, progress: bool = False) -> RunResult:
    """The bundled offline demo; `safemlrm demo --out RUN_DIR`."""
    return run_config(demo_config(overrides), Path(out), base_dir=Path.cwd(), progress=progress)


def load(run_dir: str | Path) -> RunData:
    """A run's data (records, targets, judges, identity) from its store."""
    return load_run(run_dir)


def report(run_dir: str | Path) -> dict[str, Path]:
    """Rebuild a run's reports from its store; `safemlrm report RUN_DIR`."""
    from safemlrm.report import write_reports

    data = load_run(run_dir)
    html = bool(data.config.get("html_report", True))
    return write_reports(data, Path(run_dir), None, html=html)


def to_dataframe(run_dir: str | Path, *, long: bool = False) -> Any:
    """One row per (probe, target) with every part and judgement, as a pandas DataFrame.

    ``long=True``: one row per (probe, target, part, judge) score, the columns of ``ScoreRow`` plus
    the rationale; the analyses take it through ``safemlrm.analysis.frames``.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("to_dataframe needs pandas: pip install pandas") from exc
    if long:
        from safemlrm.analysis.frames import run_scores_frame

        return run_scores_frame(load_run(run_dir))
    from safemlrm.verbs.export import iter_rows

    return pd.DataFrame(list(iter_rows(Path(run_dir))))


def _invocation(
    config: str | Path | RunConfig, out: str | Path | None, overrides: list[str] | None, shard: str | Shard | None
) -> tuple[RunConfig, Path, Path, Shard | None]:
    """What run, generate and plan share: the config, its run folder, its base folder, the shard."""
    cfg, base_dir = _config_and_base(config, overrides)
    run_dir = Path(out) if out is not None else default_run_dir(cfg)
    return cfg, run_dir, base_dir, Shard.parse(shard) if shard is not None else None


def _config_and_base(config: str | Path | RunConfig, overrides: list[str] | None) -> tuple[RunConfig, Path]:
    if isinstance(config, RunConfig):
        if overrides:
            raise ValueError("overrides apply to config files; edit the RunConfig object directly")
        return config, Path.cwd()
    path = Path(config)
    return load_config(path, overrides), path.resolve().parent
