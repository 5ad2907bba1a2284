"""A scripted target for tests: replies from a table, a template, or a function of the probe."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.core.context import PluginContext
from safemlrm.core.plugins import targets
from safemlrm.core.types import Generation, Probe


@targets.register("fake")
class FakeTarget:
    """A scripted model for tests and dry runs (no model is called)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str = "fake-model"
        replies: dict[str, str] = Field(default_factory=dict, description="sample id -> reply")
        default: str = Field(
            default="<think>I consider the request: {prompt}</think>I cannot help with that.",
            description="reply template for unlisted samples ({prompt}, {sample_id}, {sample} are filled in)",
        )
        fail_ids: list[str] = Field(default_factory=list, description="sample ids whose generation errors")
        delay_s: float = Field(default=0.0, ge=0)
        max_batch_size: int = Field(default=1, ge=1)
        max_concurrency: int = Field(default=64, ge=1)

    def __init__(self, params: Params, ctx: PluginContext) -> None:
        self.params = params
        self.label = ctx.label or "fake"
        self.max_batch_size = params.max_batch_size
        self.max_concurrency = params.max_concurrency
        self.calls = 0
        self.batches: list[int] = []
        self.reply_fn: Callable[[Probe], str] | None = None  # tests may script replies directly
        self.sample_fn: Callable[[Probe, int], str] | None = None  # ... or per sample index

    def identity(self) -> dict[str, Any]:
        return {"kind": "fake", **self.params.model_dump(exclude={"delay_s", "max_concurrency"})}

    def _reply(self, probe: Probe, sample: int = 0) -> str:
        if self.sample_fn is not None:
            return self.sample_fn(probe, sample)
        if self.reply_fn is not None:
            return self.reply_fn(probe)
        if probe.sample_id in self.params.replies:
            return self.params.replies[probe.sample_id]
        return self.params.default.format(prompt=probe.user_text, sample_id=probe.sample_id, sample=sample)

    async def generate(self, probes: Sequence[Probe], *, sample: int = 0) -> list[Generation]:
        self.batches.append(len(probes))
        if self.params.delay_s:
            await asyncio.sleep(self.params.delay_s)
        out = []
        for probe in probes:
            self.calls += 1
            if probe.sample_id in self.params.fail_ids:
                out.append(Generation(probe_key=probe.key, target=self.label, error="scripted failure"))
            else:
                text = self._reply(probe, sample)
                out.append(Generation(probe_key=probe.key, target=self.label, text=text, finish_reason="stop"))
        return out

    async def aclose(self) -> None:
        return None
