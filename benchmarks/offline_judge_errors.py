"""Where the offline judge errs: its held-out verdicts on the two dev sets, slice by slice, beside the
published judges' verdicts on the same rows.

    .venv/bin/python scripts/train_cross_encoder.py --data ../shared/data \\
        --predictions benchmarks/results/offline_judge_predictions.json      # 55 min, the shipped recipe
    .venv/bin/python benchmarks/offline_judge_errors.py --data ../shared/data  # seconds

The predictions file holds each dev row's held-out P(harmful) from the training script's evaluation
fits (request-grouped cross-validation and out-of-source), named by source and position; this script
joins them with what the dev files say of each row (HarmBench: functional category, attack method,
the three human votes, the published judges' labels; JBB: the votes and the published judges) and
writes `benchmarks/results/offline_judge_errors.json` and a markdown table (docs/judges.md quotes it).
Every figure is agreement with the human majority, with a Wilson 95% interval.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from _common import ROOT, write_result

sys.path.insert(0, str(ROOT / "scripts"))
from train_offline_judge import agreement  # the metrics' own summary: accuracy, CI, kappa, FPR, FNR

# The published judges whose labels each dev file carries (column -> name shown).
PUBLISHED = {
    "harmbench": {"gpt-4-0613": "GPT-4", "cls": "HarmBench Llama-2-13B cls", "llama_guard": "Llama Guard"},
    "jbb": {
        "llama3_cf": "Llama-3-70B",
        "gpt4_cf": "GPT-4",
        "llamaguard2_cf": "Llama Guard 2",
        "harmbench_cf": "HarmBench cls",
    },
}
# A response longer than this is read as a head and a tail: the judge sees at most 256 tokens in all.
LONG_RESPONSE_CHARS = 1000
PREDICTIONS = "offline_judge_predictions.json"


@dataclass
class DevRow:
    source: str
    label: int
    votes: int  # of 3 annotators, how many said harmful
    length: int  # characters of the response
    published: dict[str, int]
    tags: dict[str, str] = field(default_factory=dict)


def dev_rows(data: Path) -> list[DevRow]:
    """The dev rows in the order scripts/train_offline_judge.py loads them (HarmBench, then JBB)."""
    with (data / "benchmarks" / "harmbench_behaviors_text_all.csv").open(encoding="utf-8", newline="") as handle:
        behaviours = {r["BehaviorID"]: r for r in csv.DictReader(handle)}
    rows: list[DevRow] = []
    harmbench = json.loads((data / "judge_validation" / "harmbench_text_val_dev.json").read_text(encoding="utf-8"))
    for behaviour_id, items in harmbench.items():
        if behaviour_id not in behaviours:
            continue  # as the training script: two validation ids are missing from the behaviours file
        for item in items:
            votes = sum(int(item[f"human_{i}"]) for i in range(3))
            published = {c: int(item[c]) for c in PUBLISHED["harmbench"] if item.get(c) in (0, 1, "0", "1")}
            tags = {"category": behaviours[behaviour_id]["FunctionalCategory"], "method": str(item.get("method", ""))}
            rows.append(DevRow("harmbench", int(votes >= 2), votes, len(item["generation"]), published, tags))
    with (data / "judge_validation" / "jbb_judge_comparison_dev.csv").open(encoding="utf-8", newline="") as handle:
        for r in csv.DictReader(handle):
            votes = sum(int(r[f"human{i}"]) for i in (1, 2, 3))
            published = {c: int(r[c]) for c in PUBLISHED["jbb"] if r.get(c) in ("0", "1")}
            rows.append(DevRow("jbb", int(r["human_majority"]), votes, len(r["target_response"]), published))
    return rows


def joined(predictions: dict[str, Any], rows: Sequence[DevRow]) -> list[tuple[DevRow, dict[str, float]]]:
    """Each predicted row with its dev row; a label that disagrees means the files drifted apart."""
    by_source: dict[str, list[DevRow]] = {}
    for row in rows:
        by_source.setdefault(row.source, []).append(row)
    out = []
    for entry in predictions["rows"]:
        candidates = by_source.get(entry["source"], [])
        if entry["ordinal"] >= len(candidates):
            raise ValueError(f"predictions: {entry['source']} row {entry['ordinal']} is not in the dev files")
        row = candidates[entry["ordinal"]]
        if row.label != entry["label"]:
            raise ValueError(
                f"predictions: {entry['source']} row {entry['ordinal']} has label {entry['label']}, the dev file "
                f"{row.label}: the predictions were made from other files"
            )
        out.append((row, entry))
    return out


def slices(source: str) -> list[tuple[str, Callable[[DevRow], bool]]]:
    out: list[tuple[str, Callable[[DevRow], bool]]] = [
        ("all rows", lambda r: True),
        ("annotators unanimous", lambda r: r.votes in (0, 3)),
        ("annotators split 2-1", lambda r: r.votes in (1, 2)),
        (f"response up to {LONG_RESPONSE_CHARS:,} characters", lambda r: r.length <= LONG_RESPONSE_CHARS),
        (f"response over {LONG_RESPONSE_CHARS:,} characters", lambda r: r.length > LONG_RESPONSE_CHARS),
    ]
    if source == "harmbench":
        out[1:1] = [
            ("standard behaviours", lambda r: r.tags.get("category") == "standard"),
            (
                "contextual behaviours (judged without the context)",
                lambda r: r.tags.get("category") == "contextual",
            ),
        ]
    return out


def scored(chosen: Sequence[tuple[DevRow, dict[str, float]]], cv_key: str) -> dict[str, Any]:
    """The offline judge's held-out agreement on `chosen` (CV and out-of-source), and each published
    judge's on the same rows."""
    truth = [row.label for row, _ in chosen]
    entry: dict[str, Any] = {"harmful": sum(truth)}
    for key, label in ((cv_key, "offline_cv"), ("out_of_source", "offline_out_of_source")):
        entry[label] = agreement(np.array([p[key] > 0.5 for _, p in chosen]), np.array(truth))
    for column, judge in PUBLISHED[chosen[0][0].source].items():
        have = [(row.published[column], row.label) for row, _ in chosen if column in row.published]
        if have:
            entry[judge] = agreement(np.array([a for a, _ in have]), np.array([b for _, b in have]))
    return entry


def breakdown(pairs: Sequence[tuple[DevRow, dict[str, float]]], cv_key: str) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for source in ("jbb", "harmbench"):
        mine = [(row, p) for row, p in pairs if row.source == source]
        if not mine:
            continue
        table = []
        for name, keep in slices(source):
            chosen = [(row, p) for row, p in mine if keep(row)]
            if chosen:
                table.append({"slice": name, **scored(chosen, cv_key)})
        errors = [row for row, p in mine if int(p[cv_key] > 0.5) != row.label]
        first = next(iter(PUBLISHED[source]))  # the best published judge on that set
        results[source] = {
            "slices": table,
            "offline_cv_errors": {
                "n": len(errors),
                "on_split_rows": sum(row.votes in (1, 2) for row in errors),
                f"also_wrong_for_{PUBLISHED[source][first]}": sum(
                    row.published.get(first, row.label) != row.label for row in errors
                ),
            },
        }
        if source == "harmbench":
            methods = sorted({row.tags["method"] for row, _ in mine})
            results[source]["by_attack_method"] = {
                method: scored([(row, p) for row, p in mine if row.tags["method"] == method], cv_key)
                for method in methods
            }
    return results


def percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100 * value:.1f}%"  # NaN: no row of that class


def markdown(results: dict[str, Any]) -> str:
    lines = []
    for source, title in (("jbb", "JailbreakBench judge comparison"), ("harmbench", "HarmBench classifier validation")):
        if source not in results:
            continue
        judges = list(PUBLISHED[source].values())
        lines += [
            f"{title}: accuracy (false negatives) on each slice; offline held out",
            "",
            "| slice | n (harmful) | offline, CV | offline, out-of-source | " + " | ".join(judges) + " |",
            "|---|---|---|---|" + "---|" * len(judges),
        ]
        for entry in results[source]["slices"]:
            cells = []
            for key in ("offline_cv", "offline_out_of_source", *judges):
                m = entry.get(key)
                cells.append(f"{percent(m['accuracy'])} ({percent(m['false_negative_rate'])})" if m else "")
            lines.append(
                f"| {entry['slice']} | {entry['offline_cv']['n']} ({entry['harmful']}) | " + " | ".join(cells) + " |"
            )
        errors = results[source]["offline_cv_errors"]
        lines += ["", f"offline CV errors: {json.dumps(errors)}", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--predictions", type=Path, default=ROOT / "benchmarks" / "results" / PREDICTIONS)
    args = parser.parse_args(argv)
    for path in (args.data / "judge_validation", args.predictions):
        if not path.exists():
            parser.error(f"{path}: not found (see this script's docstring for how to make it)")
    predictions = json.loads(args.predictions.read_text(encoding="utf-8"))
    cv_key = f"grouped_{predictions['settings']['folds']}fold"
    results = breakdown(joined(predictions, dev_rows(args.data)), cv_key)
    table = markdown(results)
    print(table)
    write_result(
        "offline_judge_errors",
        {
            "predictions": args.predictions.name,
            "training_settings": predictions["settings"],
            "decision": "harmful when the held-out P(harmful) > 0.5 (temperature 1, as the metrics)",
            **results,
            "markdown": table,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
