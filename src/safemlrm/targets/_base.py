"""What every target shares: prompting parameters and how they apply to a probe's messages."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from safemlrm.core.types import Message, Probe, TextPart


class TargetParams(BaseModel):
    """Parameters common to all targets. Profiles set these; configs override them."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default="", description="model id or path")
    system_prompt: str | None = Field(default=None, description="system message sent before the probe")
    user_prefix: str | None = Field(
        default=None, description="text prepended to the first user turn (for models without a system role)"
    )
    max_new_tokens: int = Field(default=1024, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    top_k: int | None = Field(default=None, ge=1, description="top-k sampling (with temperature > 0)")
    repetition_penalty: float | None = Field(default=None, gt=0, description="multiplicative; 1.0 = none")
    presence_penalty: float | None = Field(
        default=None, ge=-2, le=2, description="additive (OpenAI-style); openai and vllm kinds only"
    )
    chat_template_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="extra chat-template variables, e.g. {enable_thinking: false} (what `thinking: on|off` sets)",
    )


def prompt_messages(probe: Probe, params: TargetParams) -> list[Message]:
    """The probe's messages with the target's system prompt and user prefix applied."""
    messages = list(probe.messages)
    if params.user_prefix:
        for i, message in enumerate(messages):
            if message.role == "user":
                content = list(message.content)
                first_text = next((j for j, p in enumerate(content) if isinstance(p, TextPart)), None)
                if first_text is None:
                    content.append(TextPart(text=params.user_prefix))
                else:
                    old = content[first_text]
                    assert isinstance(old, TextPart)
                    content[first_text] = TextPart(text=f"{params.user_prefix}\n{old.text}")
                messages[i] = Message(role="user", content=tuple(content))
                break
    if params.system_prompt and not any(m.role == "system" for m in messages):
        messages.insert(0, Message(role="system", content=(TextPart(text=params.system_prompt),)))
    return messages
