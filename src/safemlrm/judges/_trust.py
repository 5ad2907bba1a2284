"""The validation records of the bundled judges (see `safemlrm.core.trust`), built from data files.

- the offline heads: the `agreement` list of the head's JSON (measured when the head was trained);
- the keyword baseline: its `judge-eval` figures, for the default phrases only;
- the LLM judges: the figures published for their prompt with a named judge model, which apply only
  when the configured judge model is that model (and the prompt settings are the published ones).

The figures live in ``safemlrm/data/judges/published_agreement.json`` and the heads' JSON files, not in
the judge modules, so updating a figure does not change a judge's verdict-code version (and its cache key).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from safemlrm.core.trust import LLM_JUDGE_ADVICE, Agreement, JudgeValidation, not_validated, validations_from

PUBLISHED_FILE = "published_agreement.json"


@cache
def published_data() -> dict[str, Any]:
    text = (resources.files("safemlrm") / "data" / "judges" / PUBLISHED_FILE).read_text(encoding="utf-8")
    data = json.loads(text)
    assert isinstance(data, dict)
    return data


def head_json(name_or_path: str) -> dict[str, Any]:
    """The JSON beside a head (or any shipped model file): a shipped name (`offline_harm`) or a path to
    its `.npz`, resolved as the loaders do. Read apart from the model, so it works whatever the model is."""
    path = Path(name_or_path)
    if path.suffix == ".npz" or path.exists():
        text = path.with_suffix(".json").read_text(encoding="utf-8")
    else:
        text = (resources.files("safemlrm") / "data" / "judges" / f"{name_or_path}.json").read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{name_or_path}: its JSON is not an object")
    return data


def head_validation(meta: dict[str, Any], head: str) -> JudgeValidation:
    """An offline head's record: its JSON's `agreement` list, or "not validated here" without one."""
    raw = meta.get("agreement")
    if not raw:
        return not_validated(
            f"the head {head!r} carries no measured agreement with human labels", advice=LLM_JUDGE_ADVICE
        )
    rows = validations_from(raw)
    return JudgeValidation(
        status="measured",
        agreement=tuple(rows),
        note="held-out agreement measured when the head was trained (" + str(meta.get("trained", "date unknown")) + ")",
        advice=LLM_JUDGE_ADVICE,
    )


def keyword_validation(default_params: bool) -> JudgeValidation:
    """The keyword baseline's `judge-eval` figures, which hold for its default phrases only."""
    if not default_params:
        return not_validated(
            "the figures measured here are for the default phrases and settings; yours differ",
            advice=LLM_JUDGE_ADVICE,
        )
    rows = validations_from(published_data()["keyword"]["measured"])
    return JudgeValidation(
        status="measured",
        agreement=tuple(rows),
        note="a refusal-phrase baseline: it tells refusals from answers, not harmful answers from harmless ones",
        advice=LLM_JUDGE_ADVICE,
    )


def model_name(identity: dict[str, Any]) -> str | None:
    """The judge model a target identity names (its `model`, else its kind)."""
    for key in ("model", "model_id", "hf_id", "repo_id", "path"):
        value = identity.get(key)
        if isinstance(value, str) and value:
            return value
    kind = identity.get("kind")
    return kind if isinstance(kind, str) else None


def same_model(configured: str | None, published: str) -> bool:
    """Whether a configured model names the published one: the same repository name, case-insensitively
    (`cais/HarmBench-Llama-2-13b-cls` and a server's `HarmBench-Llama-2-13b-cls` are the same)."""
    if not configured:
        return False
    tail = configured.strip().rstrip("/").rsplit("/", 1)[-1].lower()
    return tail == published.rsplit("/", 1)[-1].lower()


def published_validation(kind: str, params: dict[str, Any], configured_model: str | None) -> JudgeValidation:
    """An LLM judge's record: the published figures for its prompt that hold for its judge model and
    settings ("published, not measured here"); otherwise "not validated here", the published figures
    kept for reference with the model each was measured with."""
    entry = published_data().get(kind)
    if entry is None:
        return not_validated("no agreement with human labels is recorded for this judge", judge_model=configured_model)
    figures = [f for f in entry.get("published", []) if all(params.get(k) == v for k, v in f["when"].items())]
    rows = [Agreement.model_validate(f) for f in figures]
    matching = tuple(r for r in rows if r.model is not None and same_model(configured_model, r.model))
    if matching:
        models = ", ".join(sorted({r.model or "" for r in matching}))
        return JudgeValidation(
            status="published",
            agreement=matching,
            judge_model=configured_model,
            note=f"published for {entry.get('prompt', 'its prompt')} with {models}; your judge model: "
            f"{configured_model}; not measured here",
        )
    if rows:
        models = ", ".join(sorted({r.model or "" for r in rows}))
        note = (
            f"published figures for {entry.get('prompt', 'its prompt')} are with {models}; "
            f"your judge model: {configured_model or 'unknown'}"
        )
    elif entry.get("published"):
        settings = "; ".join(sorted({", ".join(f"{k}: {v}" for k, v in f["when"].items()) for f in entry["published"]}))
        note = f"the published figures for {entry.get('prompt', 'its prompt')} hold with {settings}; yours differ"
    else:
        note = str(entry.get("why") or "nothing is published for its prompt")
    return JudgeValidation(status="not_validated", agreement=tuple(rows), judge_model=configured_model, note=note)


__all__ = ["head_json", "head_validation", "keyword_validation", "model_name", "published_validation", "same_model"]
