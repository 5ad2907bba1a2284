"""A run as a Hugging Face `datasets.Dataset` (or Parquet file) with a fixed, documented schema.

One row per (probe, target), judgements nested as a list, so the columns are the same for every
run (unlike the wide `parquet` export, which makes a column per part and judge). The schema is in
docs/interop.md; `SCHEMA_VERSION` changes when it does. A file or folder written here can be read
back as model outputs by the `replay` target (`format: export`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from safemlrm.core.records import Record
from safemlrm.core.store import RunStore

SCHEMA_VERSION = 1
DATASETS_EXTRA = "pip install 'safemlrm[datasets]'"

# column -> (datasets feature type, description); the docs table is made from this.
COLUMNS: dict[str, tuple[str, str]] = {
    "sample_id": ("string", "the sample's id in its dataset"),
    "sample_key": ("string", "content hash of the sample"),
    "dataset": ("string", "dataset name"),
    "category": ("string", "scenario / harm category"),
    "benign": ("bool", "a prompt the model should answer (over-refusal)"),
    "instruction": ("string", "the intent the judges score against"),
    "probe_key": ("string", "content hash of the probe (the attacked prompt); joins rows across targets"),
    "attack": ("string", "attack name"),
    "attack_params": ("string", "attack parameters, JSON"),
    "messages": ("string", "the chat messages sent, JSON (text and image parts)"),
    "prompt": ("string", "the user turns' text"),
    "images": ("list<struct<path: string, sha256: string>>", "images of the probe"),
    "target": ("string", "target label in the run"),
    "model": ("string", "model id of the target"),
    "output": ("string", "raw model output"),
    "native_reasoning": ("string?", "reasoning field returned by the API, when it has one"),
    "reasoning": ("string", "reasoning part after parsing"),
    "answer": ("string", "answer part after parsing"),
    "parse_status": ("string", "ok, no_reasoning, unterminated, missing_answer, empty or error"),
    "parser": ("string", "reasoning parser used"),
    "finish_reason": ("string?", "why generation stopped"),
    "error": ("string?", "generation error; the row has no output when set"),
    "latency_s": ("float64", "seconds the generation took"),
    "prompt_tokens": ("int64?", "prompt tokens, when reported"),
    "completion_tokens": ("int64?", "completion tokens, when reported"),
    "judgements": (
        "list<struct<part, judge, score: float64, label, rationale, error?>>",
        "one entry per (part, judge); score on the 0-5 harm scale, NaN when the judge failed",
    ),
}


def features() -> Any:
    """The `datasets.Features` of the schema."""
    datasets = _import_datasets()
    value = datasets.Value
    string = value("string")
    kinds = {"string": string, "string?": string, "bool": value("bool"), "float64": value("float64")}
    kinds["int64?"] = value("int64")
    out: dict[str, Any] = {}
    for name, (kind, _) in COLUMNS.items():
        if name == "images":
            out[name] = [{"path": string, "sha256": string}]
        elif name == "judgements":
            out[name] = [
                {
                    "part": string,
                    "judge": string,
                    "score": value("float64"),
                    "label": string,
                    "rationale": string,
                    "error": string,
                }
            ]
        else:
            out[name] = kinds[kind]
    return datasets.Features(out)


def _import_datasets() -> Any:
    try:
        import datasets
    except ImportError as exc:
        raise ImportError(f"the Hugging Face dataset export needs `datasets`: {DATASETS_EXTRA}") from exc
    return datasets


def dataset_row(record: Record, model: str) -> dict[str, Any]:
    sample, probe, gen, parsed = record.sample, record.probe, record.generation, record.parsed
    return {
        "sample_id": sample.id,
        "sample_key": sample.key,
        "dataset": sample.dataset,
        "category": sample.category,
        "benign": sample.benign,
        "instruction": sample.instruction,
        "probe_key": probe.key,
        "attack": probe.attack,
        "attack_params": orjson.dumps(probe.attack_params).decode(),
        "messages": orjson.dumps([m.model_dump(mode="json") for m in probe.messages]).decode(),
        "prompt": probe.user_text,
        "images": [{"path": img.path, "sha256": img.sha256} for img in probe.images],
        "target": gen.target,
        "model": model,
        "output": gen.text,
        "native_reasoning": gen.reasoning,
        "reasoning": parsed.reasoning,
        "answer": parsed.answer,
        "parse_status": parsed.status.value,
        "parser": parsed.parser,
        "finish_reason": gen.finish_reason,
        "error": gen.error,
        "latency_s": gen.latency_s,
        "prompt_tokens": gen.usage.get("prompt_tokens"),
        "completion_tokens": gen.usage.get("completion_tokens"),
        "judgements": [
            {
                "part": part.value,
                "judge": judge,
                "score": j.score,
                "label": j.label,
                "rationale": j.rationale,
                "error": j.error,
            }
            for (part, judge), j in sorted(record.judgements.items())
        ],
    }


def iter_dataset_rows(run_dir: str | Path) -> Iterator[dict[str, Any]]:
    store = RunStore(run_dir, create=False)
    try:
        models = {label: info.model for label, info in store.target_infos().items()}
        for record in store.iter_records():
            yield dataset_row(record, models.get(record.generation.target, ""))
    finally:
        store.close()


def to_hf_dataset(run_dir: str | Path) -> Any:
    """The run's latest invocation as a `datasets.Dataset` (one row per probe and target)."""
    datasets = _import_datasets()
    schema = features()
    info = datasets.DatasetInfo(
        description=f"safemlrm run {Path(run_dir).name} (export schema {SCHEMA_VERSION})", features=schema
    )
    rows = list(iter_dataset_rows(run_dir))
    return datasets.Dataset.from_list(rows, features=schema, info=info)


def export_hf(run_dir: str | Path, out: str | Path) -> Path:
    """Write the dataset: a Parquet file when `out` ends in .parquet, else a `save_to_disk` folder."""
    out = Path(out)
    dataset = to_hf_dataset(run_dir)
    if out.suffix.lower() == ".parquet":
        dataset.to_parquet(str(out))
    else:
        dataset.save_to_disk(str(out))
    return out
