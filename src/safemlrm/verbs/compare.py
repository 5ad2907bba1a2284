"""`safemlrm compare RUN_DIR RUN_DIR... [--pair REASONING=BASE] [--out DIR]`: analyses across runs.

Two uses:
- reasoning against base when the two models ran in different runs: ``--pair r1=qwen`` pairs them (as
  ``base:`` would inside one run), and the merged report shows the reasoning tax and blind spots;
- before / after: a target label present in several runs (e.g. a model before and after a safety fine-tune,
  or a new judge) is compared run against run on the same probes, with the same paired statistics.

Runs are merged into one RunData. A label that occurs in more than one run is renamed ``label@run``
(run = the run directory's name); `--pair` accepts either form when it is unambiguous.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from safemlrm.analysis.reasoning_tax import PairedComparison, compare_targets
from safemlrm.analysis.samples import first_samples
from safemlrm.analysis.summary import json_safe
from safemlrm.analysis.tables import Column, Table, to_markdown, write_csv
from safemlrm.core.records import JudgeInfo, Record, RunData, TargetInfo
from safemlrm.core.types import Part


class CompareError(ValueError):
    pass


def run_names(run_dirs: Sequence[str]) -> list[str]:
    names: list[str] = []
    for run_dir in run_dirs:
        base = Path(run_dir).resolve().name or "run"
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


def merge_runs(runs: Sequence[RunData], names: Sequence[str]) -> tuple[RunData, dict[str, list[str]], list[str]]:
    """One RunData holding every run; returns it, {original label: [merged labels, in run order]} and notes."""
    if len(runs) != len(names):
        raise CompareError("need one name per run")
    thresholds = {r.asr_threshold for r in runs}
    if len(thresholds) > 1:
        raise CompareError(f"runs use different ASR thresholds {sorted(thresholds)}: set the same asr_threshold")
    counts: dict[str, int] = {}
    for run in runs:
        for t in run.targets:
            counts[t.label] = counts.get(t.label, 0) + 1
    notes: list[str] = []
    renamed: dict[str, list[str]] = {}
    targets: list[TargetInfo] = []
    judges: dict[str, JudgeInfo] = {}
    records: list[Record] = []
    for run, name in zip(runs, names, strict=True):
        mapping = {t.label: (f"{t.label}@{name}" if counts[t.label] > 1 else t.label) for t in run.targets}
        for t in run.targets:
            renamed.setdefault(t.label, []).append(mapping[t.label])
            base = mapping.get(t.base) if t.base is not None else None
            targets.append(dataclasses.replace(t, label=mapping[t.label], base=base))
        for j in run.judges:
            if j.label in judges and judges[j.label].identity != j.identity:
                notes.append(f"judge {j.label!r} differs between runs (identity of the first run is shown)")
            judges.setdefault(j.label, j)
        for rec in run.records:
            label = mapping.get(rec.generation.target, rec.generation.target)
            generation = rec.generation.model_copy(update={"target": label})
            records.append(dataclasses.replace(rec, generation=generation))
    parts: list[Part] = []
    for run in runs:
        parts.extend(p for p in run.parts if p not in parts)
    first = runs[0]
    merged = RunData(
        run_dir=" + ".join(r.run_dir for r in runs),
        config={
            "name": "compare: " + " vs ".join(names),
            "description": "runs merged by safemlrm compare",
            "seed": first.config.get("seed", 0),
            "asr_threshold": first.asr_threshold,
        },
        meta={
            "seed": first.meta.get("seed", first.config.get("seed")),
            "environment": first.meta.get("environment", {}),
            "invocations": [
                {**inv, "command": f"{name}: {inv.get('command', '')}"}
                for run, name in zip(runs, names, strict=True)
                for inv in run.meta.get("invocations", [])
            ],
            "runs": [
                {"name": n, "run_dir": r.run_dir, "config": r.config.get("name")}
                for r, n in zip(runs, names, strict=True)
            ],
        },
        targets=targets,
        judges=list(judges.values()),
        parts=parts,
        asr_threshold=first.asr_threshold,
        records=records,
    )
    return merged, renamed, notes


def _resolve(label: str, merged: RunData, renamed: dict[str, list[str]]) -> str:
    labels = {t.label for t in merged.targets}
    if label in labels:
        return label
    options = renamed.get(label, [])
    if len(options) == 1:
        return options[0]
    if options:
        raise CompareError(f"target {label!r} is in several runs; name one of: {', '.join(options)}")
    raise CompareError(f"no target {label!r} in these runs; known: {', '.join(sorted(labels))}")


def apply_pairs(merged: RunData, renamed: dict[str, list[str]], pairs: Sequence[str]) -> RunData:
    """Set `base` for each REASONING=BASE pair (labels as given to the runs, or label@run)."""
    bases: dict[str, str] = {}
    for spec in pairs:
        reasoning, sep, base = spec.partition("=")
        if not sep or not reasoning.strip() or not base.strip():
            raise CompareError(f"--pair {spec!r}: expected REASONING_LABEL=BASE_LABEL")
        bases[_resolve(reasoning.strip(), merged, renamed)] = _resolve(base.strip(), merged, renamed)
    targets = [
        dataclasses.replace(t, base=bases[t.label], reasoning=True) if t.label in bases else t for t in merged.targets
    ]
    return dataclasses.replace(merged, targets=targets)


def before_after(
    merged: RunData, renamed: dict[str, list[str]], names: Sequence[str], *, n_resamples: int = 2000
) -> list[PairedComparison]:
    """For each label in several runs: each later run against the first, per judge and judged part."""
    rows = first_samples(merged.score_rows())  # one sample per probe, as the run's own tables
    judged = {(r.target, r.judge, r.part.value) for r in rows if not r.benign}
    seed = int(merged.config.get("seed", 0) or 0)
    out: list[PairedComparison] = []
    for label, versions in renamed.items():
        if len(versions) < 2:
            continue
        before = versions[0]
        for after in versions[1:]:
            for judge in sorted({r.judge for r in rows}):
                for part in ("whole", "answer", "reasoning"):
                    if (before, judge, part) not in judged or (after, judge, part) not in judged:
                        continue
                    group = {"target": label, "before": before, "after": after, "judge": judge, "part": part}
                    out.extend(
                        r
                        for r in compare_targets(
                            rows,
                            after,
                            before,
                            judge=judge,
                            first_part=part,
                            second_part=part,
                            group=group,
                            threshold=merged.asr_threshold,
                            n_resamples=n_resamples,
                            seed=seed,
                        )
                        if r.group["scope"] in ("overall", "category")
                    )
    return out


def before_after_table(rows: Sequence[PairedComparison]) -> Table:
    data = [r.as_row() for r in rows]
    for r in data:
        r["where"] = "overall" if r["scope"] == "overall" else r["category"]
    return Table(
        "before_after",
        "Before / after: the same target in two runs, on the same probes (after minus before)",
        [
            Column("target", "target"),
            Column("judge", "judge"),
            Column("part", "part"),
            Column("where", "scope"),
            Column("n_pairs", "pairs", "int"),
            Column("asr_second", "ASR before %", "pct"),
            Column("asr_first", "ASR after %", "pct"),
            Column("asr_diff", "ΔASR pp [95% CI]", "pp_ci"),
            Column("hr_diff", "ΔHR [95% CI]", "num_ci"),
            Column("mcnemar_p", "McNemar p", "p"),
        ],
        data,
        note="Paired bootstrap 95% CI; exact McNemar test. Negative = safer after.",
    )


def compare_runs(
    runs: Sequence[RunData],
    names: Sequence[str],
    out_dir: Path,
    *,
    pairs: Sequence[str] = (),
    primary_judge: str | None = None,
) -> dict[str, Path]:
    """Merge runs, apply pairs, write the merged reports and the before/after comparison into out_dir."""
    from safemlrm.report import write_reports

    merged, renamed, notes = merge_runs(runs, names)
    merged = apply_pairs(merged, renamed, pairs)
    written = write_reports(merged, out_dir, {"compared_runs": list(names)}, primary_judge=primary_judge)
    changes = before_after(merged, renamed, names)
    table = before_after_table(changes)
    written["tables/before_after.csv"] = write_csv(table, out_dir / "tables" / "before_after.csv")
    lines = [
        f"# safemlrm compare: {' vs '.join(names)}",
        "",
        *(f"- run `{n}`: {r.run_dir}" for n, r in zip(names, runs, strict=True)),
        *(f"- pair: {p}" for p in pairs),
        *(f"- note: {n}" for n in notes),
        "",
        "The merged analyses (reasoning tax of the pairs, per-scenario numbers) are in report.md / report.html.",
        "",
        "## Before / after",
        "",
        to_markdown(table) if changes else "_No target label occurs in more than one run._\n",
    ]
    md = out_dir / "compare.md"
    md.write_text("\n".join(lines), encoding="utf-8")
    written["compare.md"] = md
    payload: dict[str, Any] = {
        "runs": list(names),
        "pairs": list(pairs),
        "notes": notes,
        "before_after": [r.as_row() for r in changes],
    }
    js = out_dir / "compare.json"
    js.write_text(json.dumps(json_safe(payload), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    written["compare.json"] = js
    return written


def cmd_compare(args: argparse.Namespace) -> int:
    from safemlrm.core.store import StoreError, load_run

    names = run_names([str(d) for d in args.run_dirs])
    try:
        runs = [load_run(d) for d in args.run_dirs]
        out = args.out or Path("compare-" + "-vs-".join(names))
        written = compare_runs(runs, names, out, pairs=args.pair, primary_judge=args.judge)
    except (CompareError, StoreError, ValueError, OSError) as exc:
        print(f"safemlrm compare: {exc}", file=sys.stderr)
        return 2
    for name in ("compare.md", "report.md", "report.html"):
        if name in written:
            print(f"{name}: {written[name]}")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser(
        "compare", help="compare runs: reasoning vs base across runs (--pair), and before/after of a target"
    )
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--out", type=Path, default=None, help="output folder (default: ./compare-RUN-vs-RUN)")
    p.add_argument(
        "--pair",
        action="append",
        default=[],
        metavar="REASONING=BASE",
        help="pair a reasoning target with its base model (labels, or label@run when in several runs)",
    )
    p.add_argument("--judge", default=None, help="judge for the headline numbers (default: first harm judge)")
    p.set_defaults(handler=cmd_compare)
