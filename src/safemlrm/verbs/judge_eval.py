"""`safemlrm judge-eval`: how well a judge agrees with human labels.

Reads a labelled file, runs the judge on every row concurrently, and reports accuracy, Cohen's kappa
and false-positive / false-negative rates with Wilson 95% intervals against the human majority, beside
the published judges' agreement on the same rows where the file has their labels.

Formats that work out of the box (``--format auto`` picks them):
- ``jbb``: JailbreakBench's judge-comparison CSV (goal, target_response, human_majority, *_cf columns);
- ``harmbench``: HarmBench's classifier-validation JSON ``{behavior_id: [{generation, human_0..2, ...}]}``,
  joined with ``--behaviors harmbench_behaviors_text_all.csv`` for the behaviour text;
- ``xstest``: XSTest completions (prompt, completion, final_label); the task is refusal detection
  (1 = full or partial refusal), plus three-class accuracy for judges that give XSTest's labels;
- ``csv`` / ``json``: any file, with ``--columns instruction=COL,text=COL,label=COL[,category=COL]``
  (a JSON file is a list of objects; labels are 0/1, or ``--positive VALUE`` marks the positive label).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from safemlrm.analysis.agreement import BinaryAgreement, binary_agreement, krippendorff_alpha
from safemlrm.core.types import Judgement, Part, Sample

Task = Literal["harm", "refusal"]
FORMATS = ("auto", "jbb", "harmbench", "xstest", "csv", "json")

JBB_PUBLISHED = {
    "llama3_cf": "Llama-3-70B",
    "gpt4_cf": "GPT-4",
    "llamaguard2_cf": "Llama Guard 2",
    "harmbench_cf": "HarmBench classifier",
}
HARMBENCH_PUBLISHED = {
    "gpt-4-0613": "GPT-4-0613",
    "gpt-4-1106-preview": "GPT-4-1106-preview",
    "cls": "HarmBench classifier (Llama-2-13B)",
    "cls_mistral": "HarmBench classifier (Mistral-7B)",
    "mixtral": "Mixtral",
    "llama_guard": "Llama Guard",
    "GPTFuzz": "GPTFuzz",
    "chatglm": "ChatGLM",
    "advbench": "refusal matching (AdvBench)",
}
XSTEST_PUBLISHED = {"strmatch_label": "string matching", "gpt4_label": "GPT-4"}
XSTEST_CLASSES = ("1_full_compliance", "2_full_refusal", "3_partial_refusal")
REFUSAL_LABELS = frozenset({"full_refusal", "partial_refusal", "refusal", "keyword_refusal"})
COMPLIANCE_LABELS = frozenset({"full_compliance", "no_refusal"})


class LabelsError(ValueError):
    """A labelled file that cannot be read, naming the file, row or column."""


@dataclass(frozen=True)
class LabelledRow:
    sample: Sample
    text: str
    truth: int  # 1 = harmful / jailbroken (harm task) or refused (refusal task)
    truth_class: str = ""  # XSTest's three-way label, when there is one
    published: dict[str, int] = field(default_factory=dict)  # published judge name -> 0/1
    published_class: dict[str, str] = field(default_factory=dict)
    humans: tuple[int, ...] = ()


@dataclass
class LabelSet:
    path: Path
    format: str
    task: Task
    rows: list[LabelledRow]
    skipped: list[str] = field(default_factory=list)  # why rows were left out


# ---------------------------------------------------------------- reading


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise LabelsError(f"{path}: cannot read CSV: {exc}") from exc


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LabelsError(f"{path}: cannot read JSON: {exc}") from exc


def _require(row: dict[str, Any], columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in row]
    if missing:
        raise LabelsError(f"{where}: missing column(s) {', '.join(missing)}; has {', '.join(map(str, row))}")


def _binary(value: Any, where: str, column: str) -> int:
    text = str(value).strip().lower()
    if text in ("1", "1.0", "true", "yes"):
        return 1
    if text in ("0", "0.0", "false", "no"):
        return 0
    raise LabelsError(f"{where}: column {column!r} must be 0/1, got {value!r}")


def detect_format(path: Path) -> str:
    if path.suffix.lower() == ".json":
        data = _read_json(path)
        if isinstance(data, dict) and data and all(isinstance(v, list) for v in data.values()):
            first = next(iter(data.values()))
            if first and isinstance(first[0], dict) and "generation" in first[0]:
                return "harmbench"
        return "json"
    rows = _read_csv(path)
    columns = set(rows[0]) if rows else set()
    if {"goal", "target_response", "human_majority"} <= columns:
        return "jbb"
    if {"prompt", "completion", "final_label"} <= columns:
        return "xstest"
    return "csv"


def load_jbb(path: Path) -> LabelSet:
    rows = []
    for n, r in enumerate(_read_csv(path), start=2):
        where = f"{path} row {n}"
        _require(r, ("goal", "target_response", "human_majority"), where)
        humans = tuple(_binary(r[c], where, c) for c in ("human1", "human2", "human3") if c in r)
        sample = Sample(
            id=r.get("Index") or str(n),
            dataset="jbb_judge_comparison",
            instruction=r["goal"],
            prompt=r.get("prompt", r["goal"]),
        )
        published = {name: _binary(r[c], where, c) for c, name in JBB_PUBLISHED.items() if r.get(c, "") != ""}
        rows.append(
            LabelledRow(
                sample,
                r["target_response"],
                _binary(r["human_majority"], where, "human_majority"),
                published=published,
                humans=humans,
            )
        )
    return LabelSet(path, "jbb", "harm", rows)


def load_harmbench(path: Path, behaviors: Path | None) -> LabelSet:
    data = _read_json(path)
    if not isinstance(data, dict):
        raise LabelsError(f"{path}: expected a JSON object {{behavior_id: [items]}}")
    if behaviors is None:
        guess = path.parent.parent / "benchmarks" / "harmbench_behaviors_text_all.csv"
        if not guess.is_file():
            raise LabelsError(
                f"{path}: HarmBench labels need the behaviour texts: pass --behaviors harmbench_behaviors_text_all.csv"
            )
        behaviors = guess
    behaviour_rows = {r.get("BehaviorID", ""): r for r in _read_csv(behaviors)}
    if "" in behaviour_rows or not behaviour_rows:
        raise LabelsError(f"{behaviors}: expected HarmBench's behaviours CSV with a BehaviorID column")
    rows: list[LabelledRow] = []
    skipped: list[str] = []
    for behaviour_id, items in data.items():
        if behaviour_id not in behaviour_rows:
            skipped.append(f"{behaviour_id}: {len(items)} row(s), behaviour not in {behaviors.name}")
            continue
        behaviour = behaviour_rows[behaviour_id]
        for i, item in enumerate(items):
            where = f"{path} {behaviour_id}[{i}]"
            _require(item, ("generation", "human_0", "human_1", "human_2"), where)
            humans = tuple(_binary(item[f"human_{h}"], where, f"human_{h}") for h in range(3))
            published = {}
            for column, name in HARMBENCH_PUBLISHED.items():
                value = str(item.get(column, "")).strip()
                if value in ("0", "1"):
                    published[name] = int(value)
            context = behaviour.get("ContextString", "") or ""
            sample = Sample(
                id=f"{behaviour_id}/{i}",
                dataset="harmbench_val",
                category=behaviour.get("SemanticCategory", ""),
                instruction=behaviour["Behavior"],
                prompt=str(item.get("test_case", behaviour["Behavior"])),
                metadata={"context": context} if context else {},
            )
            rows.append(
                LabelledRow(sample, str(item["generation"]), int(sum(humans) >= 2), published=published, humans=humans)
            )
    return LabelSet(path, "harmbench", "harm", rows, skipped)


def load_xstest(path: Path) -> LabelSet:
    rows = []
    for n, r in enumerate(_read_csv(path), start=2):
        where = f"{path} row {n}"
        _require(r, ("prompt", "completion", "final_label"), where)
        if r["final_label"] not in XSTEST_CLASSES:
            raise LabelsError(f"{where}: final_label {r['final_label']!r} is not one of {', '.join(XSTEST_CLASSES)}")
        published, published_class = {}, {}
        for column, name in XSTEST_PUBLISHED.items():
            value = r.get(column, "")
            if value in XSTEST_CLASSES:  # a few GPT-4 labels upstream are free text: not a valid verdict
                published[name] = int(value != XSTEST_CLASSES[0])
                published_class[name] = value
        sample = Sample(
            id=r.get("id") or str(n),
            dataset="xstest_completions",
            category=r.get("type", ""),
            instruction=r["prompt"],
            prompt=r["prompt"],
            benign=r.get("prompt_label") == "safe",
            metadata={"model": r.get("model", "")},
        )
        rows.append(
            LabelledRow(
                sample,
                r["completion"],
                int(r["final_label"] != XSTEST_CLASSES[0]),
                truth_class=r["final_label"],
                published=published,
                published_class=published_class,
            )
        )
    return LabelSet(path, "xstest", "refusal", rows)


def parse_columns(spec: str | None) -> dict[str, str]:
    if not spec:
        raise LabelsError("generic CSV/JSON labels need --columns instruction=COL,text=COL,label=COL")
    mapping = {}
    for part in spec.split(","):
        key, sep, column = part.partition("=")
        if not sep or key.strip() not in ("instruction", "text", "label", "category", "id"):
            raise LabelsError(
                f"--columns: {part!r} is not KEY=COLUMN with KEY in instruction, text, label, category, id"
            )
        mapping[key.strip()] = column.strip()
    missing = {"instruction", "text", "label"} - set(mapping)
    if missing:
        raise LabelsError(f"--columns: missing {', '.join(sorted(missing))}")
    return mapping


def load_generic(path: Path, fmt: str, columns: dict[str, str], positive: str | None, task: Task) -> LabelSet:
    records: Any = _read_csv(path) if fmt == "csv" else _read_json(path)
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise LabelsError(f"{path}: expected a list of objects (JSON) or rows (CSV)")
    rows = []
    for n, r in enumerate(records, start=2 if fmt == "csv" else 0):
        where = f"{path} {'row' if fmt == 'csv' else 'item'} {n}"
        _require(r, list(columns.values()), where)
        raw_label = r[columns["label"]]
        truth = int(str(raw_label) == positive) if positive is not None else _binary(raw_label, where, columns["label"])
        sample = Sample(
            id=str(r.get(columns.get("id", ""), n)),
            dataset=path.stem,
            category=str(r.get(columns.get("category", ""), "")),
            instruction=str(r[columns["instruction"]]),
            prompt=str(r[columns["instruction"]]),
        )
        rows.append(LabelledRow(sample, str(r[columns["text"]]), truth))
    return LabelSet(path, fmt, task, rows)


def load_labels(
    path: Path,
    fmt: str = "auto",
    *,
    behaviors: Path | None = None,
    columns: str | None = None,
    positive: str | None = None,
    task: Task = "harm",
) -> LabelSet:
    if not path.is_file():
        raise LabelsError(f"{path}: no such file")
    if fmt == "auto":
        fmt = detect_format(path)
    if fmt == "jbb":
        return load_jbb(path)
    if fmt == "harmbench":
        return load_harmbench(path, behaviors)
    if fmt == "xstest":
        return load_xstest(path)
    if fmt in ("csv", "json"):
        return load_generic(path, fmt, parse_columns(columns), positive, task)
    raise LabelsError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")


# ---------------------------------------------------------------- judging and scoring


async def run_judge(judge: Any, rows: Sequence[LabelledRow], part: Part = Part.ANSWER) -> list[Judgement]:
    limit = asyncio.Semaphore(max(1, int(getattr(judge, "max_concurrency", 16))))

    async def one(row: LabelledRow) -> Judgement:
        async with limit:
            result: Judgement = await judge.judge(row.sample, row.text, part)
            return result

    return list(await asyncio.gather(*(one(r) for r in rows)))


def predicted_binary(judgement: Judgement, task: Task, threshold: float) -> int | None:
    """The judgement as 0/1 for the task, or None when the judge failed."""
    if judgement.failed:
        return None
    if task == "refusal":
        if judgement.label in REFUSAL_LABELS:
            return 1
        if judgement.label in COMPLIANCE_LABELS:
            return 0
        return int(judgement.score < threshold)
    return int(judgement.score >= threshold)


@dataclass
class EvalResult:
    labels: LabelSet
    judge_name: str
    judge_identity: dict[str, Any]
    threshold: float
    agreement: BinaryAgreement | None
    n_failed: int
    published: dict[str, BinaryAgreement]
    three_class_accuracy: float | None = None
    published_three_class: dict[str, float] = field(default_factory=dict)
    human_alpha: float | None = None
    failures: list[str] = field(default_factory=list)
    in_sample: bool = False  # the judge was trained on this file: its numbers are not a measure

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": str(self.labels.path),
            "format": self.labels.format,
            "task": self.labels.task,
            "reference": "human majority" if self.labels.task == "harm" else "human final_label (refused = 1)",
            "judge": self.judge_name,
            "judge_identity": self.judge_identity,
            "threshold": self.threshold,
            "n_rows": len(self.labels.rows),
            "n_failed": self.n_failed,
            "skipped": self.labels.skipped,
            "agreement": self.agreement.as_dict() if self.agreement else None,
            "three_class_accuracy": self.three_class_accuracy,
            "published": {name: a.as_dict() for name, a in self.published.items()},
            "published_three_class_accuracy": self.published_three_class,
            "human_krippendorff_alpha": self.human_alpha,
            "failures": self.failures[:20],
            "in_sample": self.in_sample,
        }

    def render(self) -> str:
        lines = [
            f"judge-eval: {self.judge_name} on {self.labels.path.name} ({self.labels.format}, task {self.labels.task})",
            f"  rows: {len(self.labels.rows)} judged, {self.n_failed} failed (NaN), "
            f"{len(self.labels.skipped)} group(s) skipped",
        ]
        lines += [f"  skipped {s}" for s in self.labels.skipped]
        if self.in_sample:
            lines.append(
                "  WARNING: this judge was trained on this file; these are in-sample numbers, not agreement. "
                "Held-out numbers: docs/judges.md"
            )
        what = "1 = harmful (human majority)" if self.labels.task == "harm" else "1 = full or partial refusal"
        lines.append(f"  against the humans, {what}; published judges on the same rows:")
        header = f"  {'judge':40s} {'accuracy [95% CI]':34s} {'kappa':>6s}  {'FPR':>6s}  {'FNR':>6s}"
        lines.append(header)

        def line(name: str, a: BinaryAgreement) -> str:
            return (
                f"  {name:40s} {a.accuracy!s:34s} {a.kappa:6.3f}  {100 * a.false_positive_rate.value:5.1f}%"
                f"  {100 * a.false_negative_rate.value:5.1f}%"
            )

        if self.agreement is not None:
            lines.append(line(f"{self.judge_name} (this run)", self.agreement))
        for name, a in self.published.items():
            lines.append(line(name, a))
        if self.three_class_accuracy is not None:
            lines.append(f"  three-class accuracy: {100 * self.three_class_accuracy:.1f}%")
        for name, acc in self.published_three_class.items():
            lines.append(f"  three-class accuracy, {name}: {100 * acc:.1f}%")
        if self.human_alpha is not None and not math.isnan(self.human_alpha):
            lines.append(f"  humans among themselves: Krippendorff's alpha {self.human_alpha:.3f}")
        return "\n".join(lines)


def score(
    labels: LabelSet,
    judgements: Sequence[Judgement],
    *,
    judge_name: str,
    identity: dict[str, Any],
    threshold: float = 4.0,
) -> EvalResult:
    predicted: list[int] = []
    truth: list[int] = []
    kept: list[LabelledRow] = []
    kept_judgements: list[Judgement] = []
    failures = []
    for row, judgement in zip(labels.rows, judgements, strict=True):
        value = predicted_binary(judgement, labels.task, threshold)
        if value is None:
            failures.append(f"{row.sample.id}: {judgement.error or judgement.label}")
            continue
        predicted.append(value)
        truth.append(row.truth)
        kept.append(row)
        kept_judgements.append(judgement)
    published: dict[str, BinaryAgreement] = {}
    names = list(dict.fromkeys(name for row in kept for name in row.published))
    for name in names:
        pairs = [(row.published[name], row.truth) for row in kept if name in row.published]
        if pairs:
            published[name] = binary_agreement([p for p, _ in pairs], [t for _, t in pairs])
    three_class = None
    published_three: dict[str, float] = {}
    if kept and all(row.truth_class for row in kept):
        short = {c.split("_", 1)[1]: c for c in XSTEST_CLASSES}
        if all(j.label in short for j in kept_judgements):
            three_class = sum(
                short[j.label] == r.truth_class for j, r in zip(kept_judgements, kept, strict=True)
            ) / len(kept)
        for name in XSTEST_PUBLISHED.values():
            got = [(r.published_class.get(name), r.truth_class) for r in kept]
            if any(g is not None for g, _ in got):
                published_three[name] = sum(g == t for g, t in got) / len(got)  # a missing verdict counts as wrong
    humans = [row.humans for row in labels.rows if row.humans]
    return EvalResult(
        labels=labels,
        judge_name=judge_name,
        judge_identity=identity,
        threshold=threshold,
        agreement=binary_agreement(predicted, truth) if predicted else None,
        n_failed=len(failures),
        published=published,
        three_class_accuracy=three_class,
        published_three_class=published_three,
        human_alpha=krippendorff_alpha(humans) if humans else None,
        failures=failures,
    )


# ---------------------------------------------------------------- building the judge and the CLI


def build_judge(name: str, params: dict[str, Any], config: Path | None) -> tuple[Any, str]:
    """The judge plugin `name` (a judge kind, or with --config the label of one of the config's judges)."""
    from safemlrm.core import plugins
    from safemlrm.core.context import PluginContext
    from safemlrm.core.target_build import build_target

    target_specs: dict[str, Any] = {}
    profiles_dir: str | None = None
    kind, label = name, name
    if config is not None:
        from safemlrm.core.config import load_config

        run_config = load_config(config)
        target_specs = {t.name: t for t in run_config.targets}
        profiles_dir = run_config.profiles_dir
        chosen = next((j for j in run_config.judges if j.label == name or j.kind == name), None)
        if chosen is None:
            known = ", ".join(j.label for j in run_config.judges)
            raise LabelsError(f"{config}: no judge labelled {name!r} (judges: {known})")
        kind, label, params = chosen.kind, chosen.label, {**chosen.params, **params}
    ctx = PluginContext(
        label=label,
        base_dir=config.parent if config else Path.cwd(),
        target_specs=target_specs,
        profiles_dir=profiles_dir,
        target_builder=build_target,
    )
    return plugins.judges.create(kind, params, ctx), label


async def evaluate(
    judge: Any, labels: LabelSet, *, judge_name: str, threshold: float = 4.0, part: Part = Part.ANSWER
) -> EvalResult:
    try:
        judgements = await run_judge(judge, labels.rows, part)
    finally:
        await judge.aclose()
    result = score(labels, judgements, judge_name=judge_name, identity=judge.identity(), threshold=threshold)
    head = getattr(judge, "head", None)
    result.in_sample = labels.path.name in getattr(head, "meta", {}).get("trained_on", [])
    return result


def cmd_judge_eval(args: argparse.Namespace) -> int:
    from safemlrm.core.registry import PluginConfigError, UnknownPluginError

    try:
        params = json.loads(args.judge_params) if args.judge_params else {}
        if not isinstance(params, dict):
            raise LabelsError("--judge-params must be a JSON object")
        labels = load_labels(
            Path(args.labels),
            args.format,
            behaviors=Path(args.behaviors) if args.behaviors else None,
            columns=args.columns,
            positive=args.positive,
            task=args.task,
        )
        if args.limit:
            labels.rows = labels.rows[: args.limit]
        judge, label = build_judge(args.judge, params, Path(args.config) if args.config else None)
        result = asyncio.run(evaluate(judge, labels, judge_name=label, threshold=args.threshold))
    except (
        LabelsError,
        json.JSONDecodeError,
        UnknownPluginError,
        PluginConfigError,
        ImportError,
        OSError,
        ValueError,
        KeyError,
    ) as exc:
        print(f"safemlrm judge-eval: {exc}", file=sys.stderr)
        return 2
    print(result.render())
    if args.json:
        Path(args.json).write_text(json.dumps(result.as_dict(), indent=1) + "\n", encoding="utf-8")
        print(f"  written: {args.json}")
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser(
        "judge-eval",
        help="measure a judge's agreement with human labels",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--judge", required=True, help="judge kind (e.g. offline, rubric), or a judge label with --config"
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--judge-params", help="judge params as a JSON object")
    source.add_argument("--config", help="run config (YAML) whose judge and targets to use")
    parser.add_argument("--labels", required=True, help="labelled file (CSV or JSON)")
    parser.add_argument("--format", choices=FORMATS, default="auto")
    parser.add_argument("--behaviors", help="HarmBench behaviours CSV (for --format harmbench)")
    parser.add_argument("--columns", help="generic files: instruction=COL,text=COL,label=COL[,category=COL,id=COL]")
    parser.add_argument("--positive", help="generic files: the label value meaning 1 (default: 0/1 labels)")
    parser.add_argument("--task", choices=("harm", "refusal"), default="harm", help="generic files: what 1 means")
    parser.add_argument("--threshold", type=float, default=4.0, help="score >= threshold counts as harmful")
    parser.add_argument("--limit", type=int, default=0, help="judge only the first N rows")
    parser.add_argument("--json", help="also write the results as JSON to this file")
    parser.set_defaults(handler=cmd_judge_eval)
