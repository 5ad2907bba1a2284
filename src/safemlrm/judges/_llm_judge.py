"""What every LLM-backed judge shares: prompt -> judge model (any target) -> parse -> bounded retry.

A judge subclass supplies the prompt messages and a parser from the judge model's reply to a
`Verdict` (score on 0-5, native label, rationale). Everything else lives here:

- the judge model is any target: a target spec ``{name, kind, profile, params}`` or the label of
  one of the run's targets, built through ``ctx.make_target``;
- concurrent calls are micro-batched up to the target's ``max_batch_size`` and run at most
  ``max_concurrency`` batches at once; the judge takes as many texts at once as that fills (its own
  ``max_concurrency`` param lowers it);
- a reply without a verdict (or a failed call) is retried at most ``max_attempts`` times in all,
  optionally with a reminder of the output format; after that the judgement is NaN with every raw
  reply kept. Never a silent 0, never an endless loop, never an exception. A NaN whose last attempt
  got a reply is final (label ``unparsed``, ``error`` unset: a rerun does not ask again); one whose
  last call failed in transport has ``error`` set, so a rerun tries it again.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.core.batching import MicroBatcher
from safemlrm.core.protocols import Target
from safemlrm.core.trust import JudgeValidation
from safemlrm.judges._base import JudgeBase
from safemlrm.plugin_api import NAN, Generation, Judgement, Message, Part, PluginContext, Probe, Sample, TextPart

ATTEMPT_SEPARATOR = "\n\n----- next attempt -----\n\n"


class LLMJudgeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | dict[str, Any] = Field(
        description="the judge model: a target spec {name, kind, profile, params} or a run target's label"
    )
    max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="calls per text at most, when the reply has no verdict or the call fails",
    )
    retry_with_reminder: bool = Field(
        default=True,
        description="on a retry, show the judge its unparsable reply and remind it of the output format "
        "(a deterministic judge would otherwise repeat itself)",
    )
    max_text_chars: int | None = Field(
        default=None,
        ge=200,
        description="judge at most this many characters of the text (head and tail kept)",
    )
    max_concurrency: int | None = Field(
        default=None,
        ge=1,
        description="texts judged at once; default: the judge model's capacity "
        "(its max_concurrency x max_batch_size)",
    )


@dataclass(frozen=True)
class Verdict:
    """A parsed judge reply: the 0-5 score, the judge's native label, and its reasoning."""

    score: float
    label: str
    rationale: str = ""


@cache
def prompt_text(name: str) -> str:
    """A prompt file shipped in safemlrm/data/prompts."""
    return (resources.files("safemlrm") / "data" / "prompts" / name).read_text(encoding="utf-8")


@cache
def prompt_json(name: str) -> dict[str, Any]:
    data = json.loads(prompt_text(name))
    assert isinstance(data, dict)
    return data


def fill(template: str, **values: str) -> str:
    """Put values into `{name}` slots in one pass: braces inside the values (code, JSON) stay as they are."""
    pattern = re.compile("|".join(re.escape("{" + name + "}") for name in values))
    return pattern.sub(lambda m: values[m.group(0)[1:-1]], template)


def text_sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def truncate_middle(text: str, max_chars: int | None) -> str:
    """Keep the head and the tail of an over-long text, with a marker saying how much was cut."""
    if max_chars is None or len(text) <= max_chars:
        return text
    marker_room = 60
    keep = max(0, max_chars - marker_room)
    head, tail = text[: keep // 2], text[len(text) - (keep - keep // 2) :]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters omitted ...]\n{tail}"


def user(text: str) -> Message:
    return Message(role="user", content=(TextPart(text=text),))


def system(text: str) -> Message:
    return Message(role="system", content=(TextPart(text=text),))


def assistant(text: str) -> Message:
    return Message(role="assistant", content=(TextPart(text=text),))


class LLMJudge(JudgeBase):
    """Base class of the LLM judges (not registered itself)."""

    kind: ClassVar[str] = "llm"
    version: ClassVar[str] = "1"
    format_reminder: ClassVar[str] = (
        "Your reply did not follow the required output format. Answer again in that format."
    )

    def __init__(self, params: LLMJudgeParams, ctx: PluginContext) -> None:
        self.params = params
        self.label = ctx.label or self.kind
        self.target: Target = ctx.make_target(params.model)
        capacity = max(1, int(self.target.max_concurrency)) * max(1, int(self.target.max_batch_size))
        self.max_concurrency = params.max_concurrency or capacity
        self._batcher: MicroBatcher[Probe, Generation] = MicroBatcher(
            self.target.generate,
            max_batch_size=max(1, self.target.max_batch_size),
            max_wait_s=0.005,
            max_inflight=max(1, self.target.max_concurrency),
        )

    # ------------------------------------------------------------------ for subclasses

    @property
    def can_remind(self) -> bool:
        """Whether a retry may append the bad reply and a format reminder to the conversation."""
        return True

    def messages(self, sample: Sample, text: str) -> list[Message]:
        raise NotImplementedError

    def parse(self, reply: str, sample: Sample) -> Verdict | None:
        raise NotImplementedError

    def precheck(self, sample: Sample, text: str) -> Judgement | None:
        """A judgement made without calling the judge model (default: empty text is not judged)."""
        if not text.strip():
            return self._judgement(NAN, "empty", error="empty text: nothing to judge")
        return None

    def prompt_identity(self) -> dict[str, Any]:
        """What else the cached judgement depends on (template hashes, modes)."""
        return {}

    # ------------------------------------------------------------------ shared machinery

    def identity(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": self.version,
            "model": self.target.identity(),
            **self.params.model_dump(exclude={"model", "max_concurrency"}),
            **self.prompt_identity(),
        }

    def validation(self) -> JudgeValidation:
        """The agreement published for this judge's prompt, when the configured judge model is the one
        it was published with; otherwise "not validated here" (`judges/_trust.py`)."""
        from safemlrm.judges._trust import model_name, published_validation

        return published_validation(self.kind, self.params.model_dump(), model_name(self.target.identity()))

    def _probe(self, sample: Sample, messages: list[Message]) -> Probe:
        return Probe(
            sample_key=sample.key,
            sample_id=sample.id,
            attack=f"judge:{self.label}",
            messages=tuple(messages),
        )

    async def judge(self, sample: Sample, text: str, part: Part) -> Judgement:
        try:
            early = self.precheck(sample, text)
            if early is not None:
                return early
            original = self.messages(sample, truncate_middle(text, self.params.max_text_chars))
            messages = original
            replies: list[str] = []
            last_problem = ""
            for _attempt in range(self.params.max_attempts):
                generation = await self._batcher.submit_one(self._probe(sample, messages))
                if generation.error is not None:
                    last_problem = f"judge model call failed: {generation.error}"
                    replies.append(f"[call failed] {generation.error}")
                    continue
                reply = generation.text
                verdict = self.parse(reply, sample)
                if verdict is not None and not math.isnan(verdict.score):
                    return self._judgement(verdict.score, verdict.label, rationale=verdict.rationale, raw=reply)
                replies.append(reply)
                last_problem = "reply has no parsable verdict"
                if self.params.retry_with_reminder and self.can_remind:
                    messages = [*original, assistant(reply or "(empty reply)"), user(self.format_reminder)]
            problem = f"{last_problem} after {self.params.max_attempts} attempt(s)"
            raw = ATTEMPT_SEPARATOR.join(replies)
            if last_problem.startswith("reply"):
                # The judge model answered, without a verdict: a final NaN (kept, never re-requested).
                return self._judgement(NAN, "unparsed", rationale=problem, raw=raw)
            # The last call failed in transport: ``error`` marks it for a retry on the next run.
            return self._judgement(NAN, "error", raw=raw, error=problem)
        except Exception as exc:  # a judge never raises: the failure is a NaN judgement
            return self._judgement(NAN, "error", error=f"{type(exc).__name__}: {exc}")

    async def aclose(self) -> None:
        await self._batcher.aclose()
        await self.target.aclose()
