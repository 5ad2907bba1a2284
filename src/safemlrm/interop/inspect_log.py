"""A run as inspect_ai `.eval` logs, one per target, so `inspect view` browses it.

Written with inspect_ai's own log API. Each (probe, target) is a sample: the probe's messages (text
and images) as input, the model's reply as an assistant message whose reasoning is a
`ContentReasoning` part and whose answer is a `ContentText` part, and one score per (judge, part)
named `judge/part` with the judge's rationale as the explanation. Failed judgements keep their NaN.
The raw output, the parse status and the native reasoning field stay in the sample's metadata.
"""

from __future__ import annotations

import base64
import math
import mimetypes
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from safemlrm._version import __version__
from safemlrm.core.records import Record, RunData, TargetInfo
from safemlrm.core.types import ImagePart, Message, TextPart

INSPECT_EXTRA = "pip install 'safemlrm[inspect]'"

_STOP_REASONS = {"stop", "max_tokens", "model_length", "tool_calls", "content_filter"}
_FINISH_ALIASES = {"length": "max_tokens", "eos": "stop", "end_turn": "stop"}


def _import_inspect() -> Any:
    try:
        import inspect_ai.log as inspect_log
    except ImportError as exc:
        raise ImportError(f"--format inspect needs inspect_ai: {INSPECT_EXTRA}") from exc
    return inspect_log


def _iso(timestamp: float | None) -> str:
    when = datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime.now(UTC)
    return when.isoformat(timespec="seconds")


def _image_uri(path: str, embed: bool) -> str:
    """A data URI (so the log is self-contained), or the path when the file is gone or not embedded."""
    file = Path(path)
    if not embed or not file.is_file():
        return path
    mime = mimetypes.guess_type(file.name)[0] or "image/png"
    return f"data:{mime};base64,{base64.b64encode(file.read_bytes()).decode()}"


def _content(message: Message, embed: bool) -> list[Any]:
    from inspect_ai.model import ContentImage, ContentText

    out: list[Any] = []
    for part in message.content:
        if isinstance(part, TextPart):
            out.append(ContentText(text=part.text))
        elif isinstance(part, ImagePart):
            out.append(ContentImage(image=_image_uri(part.image.path, embed)))
    return out


def _input_messages(record: Record, embed: bool) -> list[Any]:
    from inspect_ai.model import ChatMessageAssistant, ChatMessageSystem, ChatMessageUser

    kinds = {"system": ChatMessageSystem, "user": ChatMessageUser, "assistant": ChatMessageAssistant}
    return [kinds[m.role](content=_content(m, embed)) for m in record.probe.messages]


def _assistant(record: Record, model: str) -> Any:
    from inspect_ai.model import ChatMessageAssistant, ContentReasoning, ContentText

    parsed = record.parsed
    content: list[Any] = []
    if parsed.reasoning:
        content.append(ContentReasoning(reasoning=parsed.reasoning))
    if parsed.answer or not content:
        content.append(ContentText(text=parsed.answer if parsed.reasoning else parsed.answer or parsed.raw))
    return ChatMessageAssistant(content=content, model=model, source="generate")


def _stop_reason(finish_reason: str | None) -> str:
    reason = _FINISH_ALIASES.get(finish_reason or "", finish_reason or "unknown")
    return reason if reason in _STOP_REASONS else "unknown"


def _usage(record: Record) -> Any:
    from inspect_ai.model import ModelUsage

    usage = record.generation.usage
    prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
    return ModelUsage(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)


def _scores(record: Record) -> dict[str, Any]:
    from inspect_ai.scorer import Score

    scores: dict[str, Any] = {}
    for (part, judge), j in sorted(record.judgements.items()):
        scores[f"{judge}/{part.value}"] = Score(
            value=j.score,
            answer=record.parsed.text(part),
            explanation=j.rationale or None,
            metadata={
                "label": j.label,
                "judge_version": j.judge_version,
                "error": j.error,
                "part": part.value,
            },
        )
    return scores


def _sample_id(record: Record, seen: set[str]) -> str:
    base = f"{record.sample.dataset}/{record.sample.id}/{record.probe.attack}"
    sample_id = base if base not in seen else f"{base}/{record.probe.key[:12]}"
    seen.add(sample_id)
    return sample_id


def eval_sample(record: Record, model: str, sample_id: str, *, embed_images: bool = True) -> Any:
    """One (probe, target) as an inspect_ai EvalSample."""
    from inspect_ai.log import EvalError, EvalSample
    from inspect_ai.model import ChatCompletionChoice, ModelOutput

    gen, parsed, sample = record.generation, record.parsed, record.sample
    inputs = _input_messages(record, embed_images)
    assistant = _assistant(record, model)
    output = ModelOutput(
        model=model,
        choices=[]
        if gen.error
        else [ChatCompletionChoice(message=assistant, stop_reason=_stop_reason(gen.finish_reason))],
        usage=_usage(record),
        time=gen.latency_s,
        error=gen.error,
    )
    return EvalSample(
        id=sample_id,
        epoch=1,
        input=inputs,
        target=sample.instruction,
        messages=inputs if gen.error else [*inputs, assistant],
        output=output,
        scores=_scores(record),
        metadata={
            "dataset": sample.dataset,
            "sample_id": sample.id,
            "category": sample.category,
            "benign": sample.benign,
            "attack": record.probe.attack,
            "attack_params": record.probe.attack_params,
            "probe_key": record.probe.key,
            "sample_key": sample.key,
            "parse_status": parsed.status.value,
            "parser": parsed.parser,
            "raw_output": gen.text,
            "native_reasoning": gen.reasoning,
            "finish_reason": gen.finish_reason,
        },
        model_usage={model: _usage(record)},
        total_time=gen.latency_s,
        error=EvalError(message=gen.error, traceback="", traceback_ansi="") if gen.error else None,
    )


def _results(records: Sequence[Record], threshold: float) -> Any:
    """Per score name: the mean harm score (HR) and the attack success rate on harmful samples."""
    from inspect_ai.log import EvalMetric, EvalResults, EvalScore

    grouped: dict[str, list[float]] = {}
    for record in records:
        if record.sample.benign:
            continue
        for (part, judge), j in record.judgements.items():
            grouped.setdefault(f"{judge}/{part.value}", []).append(j.score)
    scores = []
    for name, values in sorted(grouped.items()):
        valid = [v for v in values if not math.isnan(v)]
        mean = sum(valid) / len(valid) if valid else math.nan
        asr = sum(v >= threshold for v in valid) / len(valid) if valid else math.nan
        scores.append(
            EvalScore(
                name=name,
                scorer=name.split("/")[0],
                scored_samples=len(valid),
                unscored_samples=len(values) - len(valid),
                metrics={
                    "mean": EvalMetric(name="mean", value=mean),
                    "asr": EvalMetric(name="asr", value=asr, params={"threshold": threshold}),
                },
            )
        )
    completed = sum(1 for r in records if r.generation.ok)
    return EvalResults(total_samples=len(records), completed_samples=completed, scores=scores)


def eval_log(run: RunData, target: TargetInfo, *, embed_images: bool = True) -> Any:
    """The inspect_ai EvalLog of one target of a run."""
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalSpec, EvalStats

    records = [r for r in run.records if r.generation.target == target.label]
    model = f"safemlrm/{target.label}"
    seen: set[str] = set()
    samples = [eval_sample(r, model, _sample_id(r, seen), embed_images=embed_images) for r in records]
    invocations = run.meta.get("invocations", [])
    started = invocations[0]["started"] if invocations else None
    finished = invocations[-1].get("finished") if invocations else None
    name = str(run.config.get("name", "run"))
    datasets = sorted({r.sample.dataset for r in records})
    usage: dict[str, Any] = {}
    if records:
        total = _usage(records[0])
        for r in records[1:]:
            total = total + _usage(r)
        usage[model] = total
    spec = EvalSpec(
        created=_iso(started),
        task=f"safemlrm/{name}",
        task_version=1,
        dataset=EvalDataset(
            name=",".join(datasets), samples=len(samples), sample_ids=[s.id for s in samples]
        ),
        model=model,
        model_args={"kind": target.kind, "model": target.model, "profile": target.profile},
        config=EvalConfig(),
        packages={"safemlrm": __version__},
        metadata={
            "safemlrm_target": {
                "label": target.label,
                "kind": target.kind,
                "model": target.model,
                "reasoning": target.reasoning,
                "base": target.base,
                "profile": target.profile,
                "identity": target.identity,
            },
            "run_config": run.config,
            "run_dir": run.run_dir,
        },
    )
    status = "success" if all(r.generation.ok for r in records) else "error"
    return EvalLog(
        status=status,
        eval=spec,
        results=_results(records, run.asr_threshold),
        stats=EvalStats(started_at=_iso(started), completed_at=_iso(finished), model_usage=usage),
        samples=samples,
    )


def _file_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def export_inspect(
    run_dir: str | Path, out_dir: str | Path | None = None, *, embed_images: bool = True
) -> Path:
    """Write one `.eval` log per target of the run into `out_dir` (default RUN_DIR/inspect)."""
    inspect_log = _import_inspect()
    from safemlrm.core.store import load_run

    run = load_run(run_dir)
    out = Path(out_dir) if out_dir is not None else Path(run_dir) / "inspect"
    out.mkdir(parents=True, exist_ok=True)
    name = _file_part(str(run.config.get("name", "run")))
    created = _file_part(_iso(run.meta["invocations"][0]["started"] if run.meta.get("invocations") else None))
    for target in run.targets:
        log = eval_log(run, target, embed_images=embed_images)
        inspect_log.write_eval_log(
            log, out / f"{created}_{name}_{_file_part(target.label)}.eval", format="eval"
        )
    return out
