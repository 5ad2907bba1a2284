"""Random-weight models of real architectures, built offline, for tests and GPU checks.

Nothing is downloaded: a byte-level BPE tokenizer is trained with the ``tokenizers`` library on a
few sentences, given the special tokens of the Qwen chat format and a chat template, and saved with
a model built from a config. The folder then loads through the normal ``from_pretrained`` path, as a
downloaded checkpoint would. The outputs are gibberish; what they test is the plumbing: chat
templates, image tokens, padding, batching and generation.

Needs ``transformers`` and ``torch`` (``pip install 'safemlrm[hf]'``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# A ChatML template (the Qwen chat format) that understands string and list content; images become
# <|vision_start|><|image_pad|><|vision_end|>, which the Qwen-VL processor expands per image.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_CORPUS = (
    "The quick brown fox jumps over the lazy dog.",
    "A picture shows a red square on a white background.",
    "Please describe the image and answer the question step by step.",
    "I cannot help with that request, but here is some safety information.",
    "<think>Let me reason about the question first.</think> The answer is no.",
    "How do I bake bread? Mix flour, water, salt and yeast, then wait.",
    "Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000.",
)


def train_tokenizer(
    folder: str | Path, *, vocab_size: int = 600, chat_template: str = CHAT_TEMPLATE, model_max_length: int = 4096
) -> Any:
    """Train a small byte-level BPE tokenizer with the Qwen special tokens and save it to ``folder``."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    fast_tokenizer_cls: Any = transformers.PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(_CORPUS) * 20, trainer=trainer)
    wrapped = fast_tokenizer_cls(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        model_max_length=model_max_length,
        chat_template=chat_template,
    )
    wrapped.save_pretrained(str(folder))
    return wrapped


def _token_ids(tokenizer: Any) -> dict[str, int]:
    return {token: int(tokenizer.convert_tokens_to_ids(token)) for token in SPECIAL_TOKENS}


def build_tiny_causal_lm(folder: str | Path, *, seed: int = 0) -> Path:
    """A 2-layer random Qwen2ForCausalLM with a trained tokenizer, saved to ``folder``."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    tokenizer = train_tokenizer(folder)
    ids = _token_ids(tokenizer)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.save_pretrained(str(folder))
    return folder


# Qwen2.5-VL-7B-Instruct's config.json (the published values), used by the GPU check to build a
# random model of the real size and shape. Token ids are replaced by those of the trained tokenizer.
QWEN2_5_VL_7B_CONFIG: dict[str, Any] = {
    "architectures": ["Qwen2_5_VLForConditionalGeneration"],
    "model_type": "qwen2_5_vl",
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
    "vision_token_id": 151654,
    "image_token_id": 151655,
    "video_token_id": 151656,
    "hidden_act": "silu",
    "hidden_size": 3584,
    "initializer_range": 0.02,
    "intermediate_size": 18944,
    "max_position_embeddings": 128000,
    "max_window_layers": 28,
    "num_attention_heads": 28,
    "num_hidden_layers": 28,
    "num_key_value_heads": 4,
    "rms_norm_eps": 1e-06,
    "rope_theta": 1000000.0,
    "sliding_window": 32768,
    "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
    "use_cache": True,
    "use_sliding_window": False,
    "vision_config": {
        "depth": 32,
        "hidden_act": "silu",
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "in_chans": 3,
        "out_hidden_size": 3584,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "spatial_patch_size": 14,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "tokens_per_second": 2,
        "temporal_patch_size": 2,
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [16, 24, 24]},
    "vocab_size": 152064,
}

# A Qwen2.5-VL small enough for CPU tests: same layout, tiny widths (head dim 16 -> mrope 2+3+3).
TINY_QWEN2_5_VL_CONFIG: dict[str, Any] = {
    **QWEN2_5_VL_7B_CONFIG,
    "hidden_size": 64,
    "intermediate_size": 128,
    "max_position_embeddings": 4096,
    "max_window_layers": 2,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "num_key_value_heads": 2,
    "torch_dtype": "float32",
    "vision_config": {
        **QWEN2_5_VL_7B_CONFIG["vision_config"],
        "depth": 2,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_heads": 2,
        "out_hidden_size": 64,
        "fullatt_block_indexes": [1],
    },
    "rope_scaling": {"type": "mrope", "mrope_section": [2, 3, 3]},
}


def write_qwen2_5_vl_folder(
    folder: str | Path,
    config_values: dict[str, Any],
    *,
    min_pixels: int = 56 * 56,
    max_pixels: int = 28 * 28 * 1280,
) -> Any:
    """Write tokenizer, processor configs and config.json of a Qwen2.5-VL checkpoint (no weights).

    Returns the model config, whose special token ids match the trained tokenizer. The image
    processor config is Qwen's (patch 14, merge 2), with pixel bounds that tests may lower.
    """
    from transformers import Qwen2_5_VLConfig

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(folder)
    ids = _token_ids(tokenizer)
    values = dict(config_values)
    values.update(
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
    )
    values.pop("vision_token_id", None)
    if values["vocab_size"] < len(tokenizer):
        values["vocab_size"] = len(tokenizer)
    config = Qwen2_5_VLConfig(**values)
    config.save_pretrained(str(folder))
    processor_config = {
        "image_processor_type": "Qwen2VLImageProcessor",
        "do_resize": True,
        "do_rescale": True,
        "do_normalize": True,
        "do_convert_rgb": True,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
        "min_pixels": min_pixels,
        "max_pixels": max_pixels,
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "processor_class": "Qwen2_5_VLProcessor",
    }
    (folder / "preprocessor_config.json").write_text(json.dumps(processor_config, indent=2))
    (folder / "chat_template.jinja").write_text(CHAT_TEMPLATE)
    return config


def build_tiny_qwen2_5_vl(
    folder: str | Path, *, seed: int = 0, config_values: dict[str, Any] | None = None
) -> Path:
    """A tiny random Qwen2.5-VL (2 text and 2 vision layers) with tokenizer and processor, saved.

    `config_values` replaces the tiny config (e.g. a larger head dim for engines that need one).
    """
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration

    folder = Path(folder)
    values = TINY_QWEN2_5_VL_CONFIG if config_values is None else config_values
    config = write_qwen2_5_vl_folder(folder, values, max_pixels=28 * 28 * 16)
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.save_pretrained(str(folder))
    return folder
