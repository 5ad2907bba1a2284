from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.attacks._helpers import attack, sample

from safemlrm.attacks.perturb import perturb_image
from safemlrm.core.registry import PluginConfigError


def text_like() -> Image.Image:
    image = Image.new("RGB", (60, 30), "white")
    image.paste((0, 0, 0), (10, 10, 40, 20))
    return image


def test_each_perturbation() -> None:
    base = text_like()
    red = perturb_image(base, text_colour="#c00000")
    assert red.getpixel((20, 15)) == (192, 0, 0) and red.getpixel((2, 2)) == (255, 255, 255)
    low = np.asarray(perturb_image(base, contrast=0.3), dtype=float)
    assert low.std() < np.asarray(base, dtype=float).std() * 0.5
    rotated = perturb_image(base, rotate=90)
    assert rotated.size == (30, 60)
    noisy_a = np.asarray(perturb_image(base, noise_std=20, seed=1))
    noisy_b = np.asarray(perturb_image(base, noise_std=20, seed=1))
    noisy_c = np.asarray(perturb_image(base, noise_std=20, seed=2))
    assert np.array_equal(noisy_a, noisy_b) and not np.array_equal(noisy_a, noisy_c)
    # every pixel is pure black or white, so clipping cuts half the noise: about 0.8 * 20 / 2 on average
    assert 6 < np.abs(noisy_a.astype(float) - np.asarray(base, dtype=float)).mean() < 11


async def test_perturbs_the_inner_attacks_images(tmp_path: Path) -> None:
    plain = (await attack("typography", tmp_path).apply(sample()))[0]
    perturb = attack("perturb", tmp_path, {"noise_std": 8, "over": {"kind": "typography"}})
    (probe,) = await perturb.apply(sample())
    assert probe.attack == "perturb" and probe.attack_params["over"] == {"kind": "typography", "params": {}}
    assert probe.user_text == plain.user_text and probe.sample_key == sample().key
    assert probe.images[0].sha256 != plain.images[0].sha256
    again = (await attack("perturb", tmp_path, {"noise_std": 8}).apply(sample()))[0]
    assert again.images == probe.images  # same seed and image: same noise, same file


async def test_needs_an_image_and_an_effect(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"attack 'vanilla' gave sample 'fraud-1' no image to perturb"):
        await attack("perturb", tmp_path, {"rotate": 3, "over": {"kind": "vanilla"}}).apply(sample())
    with pytest.raises(PluginConfigError, match="set at least one of noise_std"):
        attack("perturb", tmp_path, {})
    with pytest.raises(PluginConfigError, match="text_colour"):
        attack("perturb", tmp_path, {"text_colour": "not-a-colour"})
