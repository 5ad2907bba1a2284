"""A converted copy of a GGUF model, kept so that later loads skip the conversion.

transformers loads a GGUF file by parsing it three times (config, weights, tokenizer) and dequantizing
it: about 45 s for the 135M-parameter demo model on one CPU core, most of the demo's start-up. The
copy is the dequantized model as float32 safetensors plus its tokenizer, saved with
``save_pretrained`` into ``$SAFEMLRM_CACHE_DIR/models`` (default ``~/.cache/safemlrm/models``), and
loads in about a second. It costs disk: about 4 bytes per parameter (517 MB for SmolLM2-135M).

A copy is keyed by the GGUF file (its resolved path, size and modification time) and by the versions
of the code that converts it (transformers, gguf), so a changed file or a new converter makes a new
copy. It is written into a temporary folder and renamed into place, so a crash never leaves a half
copy that later loads would trust. Float32 holds every dequantized value exactly, so a target loaded
from the copy generates what it would from the GGUF file (tests/targets/test_gguf_cache.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

from safemlrm.core.hashing import content_hash
from safemlrm.core.judge_cache import cache_root
from safemlrm.targets._inprocess import ModelSource, require_modules

log = logging.getLogger(__name__)

CACHE_FORMAT = 1  # bump when what a copy holds changes
COMPLETE_MARKER = "safemlrm-gguf-copy.txt"


def models_cache_root() -> Path:
    return cache_root() / "models"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def copy_folder(source: ModelSource, root: Path | None = None) -> Path:
    """Where the converted copy of ``source``'s GGUF file lives (present or not)."""
    if source.gguf_file is None:
        raise ValueError(f"model {source.label}: not a GGUF file, nothing to convert")
    gguf = (Path(source.path) / source.gguf_file).resolve()
    stat = gguf.stat()
    key = content_hash(
        [CACHE_FORMAT, str(gguf), stat.st_size, stat.st_mtime_ns, _version("transformers"), _version("gguf")]
    )
    return (root or models_cache_root()) / f"{gguf.stem}-{key[:16]}"


def cached_copy(source: ModelSource, root: Path | None = None) -> Path | None:
    """The converted copy's folder if a complete one exists, else None."""
    folder = copy_folder(source, root)
    return folder if (folder / COMPLETE_MARKER).is_file() else None


def save_copy(source: ModelSource, model: Any, tokenizer: Any, root: Path | None = None) -> Path:
    """Save an already loaded (float32) GGUF model and its tokenizer as the copy; returns its folder."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        if not all(tensor.dtype.is_floating_point for tensor in model.state_dict().values()):
            raise ValueError(
                f"model {source.label}: transformers kept its GGUF weights quantized (GGUF kernels are installed), "
                "so there is no float copy to save; set gguf_cache: false"
            )
        # The weights are already plain tensors; only the loader's marker remains, and save_pretrained
        # refuses any model that carries a GGUF quantizer.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            delattr(model.config, "quantization_config")
    folder = copy_folder(source, root)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / COMPLETE_MARKER).write_text(f"converted from {source.label} ({source.gguf_file})\n")
        try:
            os.replace(staging, folder)
        except OSError:
            if cached_copy(source, root) is None:  # not another process finishing first: a real failure
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("%s: converted copy saved in %s", source.label, folder)
    return folder


def convert(source: ModelSource, root: Path | None = None) -> Path:
    """Make the converted copy of a GGUF model unless a complete one exists; returns its folder."""
    found = cached_copy(source, root)
    if found is not None:
        return found
    require_modules("hf", "torch", "transformers")
    require_modules("gguf", "gguf")
    import torch
    import transformers

    model = transformers.AutoModelForCausalLM.from_pretrained(
        source.path, gguf_file=source.gguf_file, dtype=torch.float32
    )
    tokenizer = transformers.AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
    return save_copy(source, model, tokenizer, root)
