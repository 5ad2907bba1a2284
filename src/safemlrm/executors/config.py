"""Settings of the Ray executor (``executor: ray`` in a run config, under ``ray:``).

Kept apart from ``safemlrm.core.config`` so the run config stays small; this module imports only pydantic.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Executor = Literal["local", "ray"]


class RayActors(BaseModel):
    """How many actors host one target (or judge), and what each reserves on the cluster."""

    model_config = ConfigDict(extra="forbid")

    actors: int = Field(default=1, ge=1, description="actors (model replicas) per target or judge")
    num_gpus: float = Field(default=0.0, ge=0, description="GPUs each actor reserves; fractions share a GPU")
    num_cpus: float = Field(default=1.0, ge=0, description="CPUs each actor reserves")


class RaySpec(RayActors):
    """Where the Ray executor runs and which plugins it hosts as actors."""

    address: str | None = Field(
        default=None,
        description="Ray cluster address ('auto', 'ray://head:10001'); null = an existing ray.init, "
        "else a Ray instance started on this machine",
    )
    targets: list[str] | None = Field(
        default=None, description="labels of the targets run as Ray actors; null = every target"
    )
    judges: list[str] = Field(
        default_factory=list, description="labels of judges run as Ray actors (judges with local models)"
    )
    by_label: dict[str, RayActors] = Field(
        default_factory=dict, description="actors / num_gpus / num_cpus for one target or judge label"
    )
    ship_images: Literal["auto", "always", "never"] = Field(
        default="auto",
        description="send image bytes with each batch: auto = only to actors on another node than the driver",
    )
    start_timeout_s: float = Field(
        default=1800, gt=0, description="how long actors may take to be placed and build their plugin"
    )
    runtime_env: dict[str, Any] = Field(
        default_factory=dict, description="Ray runtime_env for ray.init (pip packages, env_vars, working_dir)"
    )

    def actors_for(self, label: str) -> RayActors:
        default = RayActors(actors=self.actors, num_gpus=self.num_gpus, num_cpus=self.num_cpus)
        return self.by_label.get(label, default)
