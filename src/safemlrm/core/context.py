"""What a plugin may use from the run it is part of.

Plugins get a `PluginContext` at construction. It gives them the run's asset folder (for
content-addressed images), the seed, their own label, and a way to build other plugins (a judge or a
query-rewriting attack that calls a configured target).

The context is kernel: it imports no plugin package. How a target is built from its spec (profiles,
thinking switch, registry) is handed in as ``target_builder`` by whoever makes the context (the
pipeline, `judge-eval`, `safemlrm.testing.plugin_context`), which keeps the kernel below the plugins.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safemlrm.core.hashing import content_hash

if TYPE_CHECKING:
    from PIL.Image import Image

    from safemlrm.core.protocols import Target
    from safemlrm.core.types import ImageRef


class SharedClients:
    """Objects shared by every plugin built from one run's context (model clients, keyed by connection).

    The contexts ``with_label`` derives keep the same instance, so a judge that names a run target by
    label reuses that target's client, and with it its concurrency limits.
    """

    def __init__(self) -> None:
        self._items: dict[Hashable, object] = {}

    def get(self, key: Hashable, factory: Callable[[], object]) -> object:
        if key not in self._items:
            self._items[key] = factory()
        return self._items[key]

    def __len__(self) -> int:
        return len(self._items)

    def __reduce__(self) -> tuple[type[SharedClients], tuple[()]]:
        # A context sent to another process (a Ray actor) starts there with no clients: sessions,
        # locks and limits belong to the process (and event loop) that made them.
        return (SharedClients, ())


@dataclass(frozen=True)
class PluginContext:
    label: str = ""
    run_dir: Path | None = None
    seed: int = 0
    base_dir: Path = field(default_factory=Path.cwd)  # relative paths in configs resolve against it
    target_specs: dict[str, Any] = field(default_factory=dict)  # label -> TargetSpec of the run
    profiles_dir: str | None = None  # the run's folder of user model profiles (for targets built here)
    clients: SharedClients = field(default_factory=SharedClients, compare=False, repr=False)
    # (TargetSpec, context, profiles_dir) -> Target; see the module docstring.
    target_builder: Callable[[Any, PluginContext, str | None], Target] | None = None

    def with_label(self, label: str) -> PluginContext:
        return dataclasses.replace(self, label=label)

    def resolve(self, path: str | os.PathLike[str]) -> Path:
        candidate = Path(path).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate)

    @property
    def assets_dir(self) -> Path:
        root = self.run_dir if self.run_dir is not None else Path.cwd() / ".safemlrm-assets"
        path = root / "assets"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save_image(self, image: Image, *, stem: str = "img") -> ImageRef:
        """Write a rendered image once, content-addressed, and return its reference.

        Re-rendering the same image on resume finds the file already there and writes nothing.
        """
        import io

        from safemlrm.core.types import ImageRef

        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data = buffer.getvalue()
        import hashlib

        digest = hashlib.sha256(data).hexdigest()
        path = self.assets_dir / f"{stem}-{digest[:16]}.png"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(data)
            tmp.replace(path)
        return ImageRef(path=str(path), sha256=digest)

    def make_target(self, spec: Any) -> Target:
        """Build a target from a TargetSpec (or the label of one of the run's targets)."""
        from safemlrm.core.config import TargetSpec

        if self.target_builder is None:
            raise RuntimeError(
                "this PluginContext cannot build targets: make it with target_builder= "
                "(safemlrm.testing.plugin_context does, as the pipeline does)"
            )
        if isinstance(spec, str):
            if spec not in self.target_specs:
                raise KeyError(f"no target labelled {spec!r} in this run; known: {sorted(self.target_specs)}")
            spec = self.target_specs[spec]
        if not isinstance(spec, TargetSpec):
            spec = TargetSpec.model_validate(spec)
        return self.target_builder(spec, self, self.profiles_dir)


def cache_key(*parts: Any) -> str:
    return content_hash(list(parts))
