"""Model profiles: what is specific to a model (how to reach it, prompting, reasoning format, base).

Built-in profiles are YAML files in ``safemlrm/data/profiles``; users add their own in a folder
named by ``profiles_dir`` in the run config or ``$SAFEMLRM_PROFILES``.
"""

from __future__ import annotations

import difflib
import os
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""
    hf_id: str | None = Field(default=None, description="Hugging Face model id, checked against the model card")
    revision: str | None = None
    kind: str = Field(default="openai", description="default target kind")
    params: dict[str, Any] = Field(default_factory=dict, description="default target params")
    parser: str = "think_tags"
    parser_params: dict[str, Any] = Field(default_factory=dict)
    reasoning: bool = False
    base: str | None = Field(default=None, description="profile name of the base model")
    thinking_kwargs: dict[Literal["on", "off"], dict[str, Any]] | None = Field(
        default=None,
        description="chat-template variables that switch a hybrid model's thinking on and off",
    )
    thinking_params: dict[Literal["on", "off"], dict[str, Any]] | None = Field(
        default=None,
        description=(
            "target params that `thinking: on|off` sets, for a switch that is no chat-template variable "
            "(InternVL3.5: a system prompt); the target's own params still win"
        ),
    )
    source: str = "builtin"

    @field_validator("thinking_kwargs", "thinking_params", mode="before")
    @classmethod
    def _yaml_on_off(cls, value: Any) -> Any:
        """YAML 1.1 reads bare `on:` / `off:` keys as true / false: take them as the two settings."""
        if isinstance(value, dict):
            return {({True: "on", False: "off"}.get(k, k) if isinstance(k, bool) else k): v for k, v in value.items()}
        return value


class ProfileError(LookupError):
    pass


def _read_profile_file(path: Path, source: str) -> list[Profile]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ProfileError(f"{path}: cannot read profile: {exc}") from exc
    items = data if isinstance(data, list) else [data]
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Profile.model_validate({**item, "source": source}))
        except (ValidationError, TypeError) as exc:
            raise ProfileError(f"{path}: profile #{i + 1} is invalid: {exc}") from exc
    return out


@lru_cache(maxsize=1)
def builtin_profiles() -> dict[str, Profile]:
    found: dict[str, Profile] = {}
    folder = resources.files("safemlrm") / "data" / "profiles"
    if folder.is_dir():
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if entry.name.endswith((".yaml", ".yml")):
                with resources.as_file(entry) as path:
                    for profile in _read_profile_file(path, "builtin"):
                        found[profile.name] = profile
    return found


def load_profiles(extra_dir: str | Path | None = None) -> dict[str, Profile]:
    profiles = dict(builtin_profiles())
    for folder in (os.environ.get("SAFEMLRM_PROFILES"), extra_dir):
        if not folder:
            continue
        root = Path(folder)
        if not root.is_dir():
            raise ProfileError(f"profiles folder {root} does not exist")
        for path in sorted(root.glob("*.y*ml")):
            for profile in _read_profile_file(path, str(path)):
                profiles[profile.name] = profile
    return profiles


def get_profile(name: str, extra_dir: str | Path | None = None) -> Profile:
    profiles = load_profiles(extra_dir)
    if name not in profiles:
        close = difflib.get_close_matches(name, list(profiles), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ProfileError(f"unknown model profile {name!r}.{hint} See `safemlrm list profiles`.")
    return profiles[name]
