"""Regenerate docs/img/attack_gallery.png: four attacks on one demo sample (`fraud-1`).

.venv/bin/python docs/img/attack_gallery.py
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from safemlrm.core import plugins
from safemlrm.attacks._fonts import load_font
from safemlrm.core.context import PluginContext

ATTACKS = [
    ("typography", {}, "typography"),
    ("figstep", {}, "figstep"),
    ("figstep_pro", {}, "figstep_pro (3 sub-figures)"),
    ("perturb", {"rotate": 8, "noise_std": 12, "contrast": 0.6, "text_colour": "#b00000"}, "perturb over typography"),
]
HEIGHT, GAP, CAPTION = 300, 16, 26


async def panels(ctx: PluginContext) -> list[tuple[str, list[Image.Image]]]:
    sample = next(s for s in plugins.datasets.create("demo", {}, ctx).load() if s.id == "fraud-1")
    out = []
    for kind, params, title in ATTACKS:
        (probe,) = await plugins.attacks.create(kind, params, ctx.with_label(kind)).apply(sample)
        out.append((title, [Image.open(ref.path).convert("RGB") for ref in probe.images]))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as run_dir:
        shown = asyncio.run(panels(PluginContext(run_dir=Path(run_dir))))
    tiles = []
    for title, images in shown:
        max_width = 420 if len(images) == 1 else 140
        scaled = []
        for image in images:
            ratio = min(HEIGHT / image.height, max_width / image.width)
            size = (max(1, int(image.width * ratio)), max(1, int(image.height * ratio)))
            scaled.append(image.resize(size, Image.Resampling.LANCZOS))
        tile = Image.new("RGB", (max(sum(i.width + 6 for i in scaled), 200), HEIGHT + CAPTION), (235, 235, 235))
        ImageDraw.Draw(tile).text((0, 2), title, fill=(0, 0, 0), font=load_font("liberation-sans", 16))
        x = 0
        for image in scaled:
            tile.paste(image, (x, CAPTION))
            x += image.width + 6
        tiles.append(tile)
    sheet = Image.new("RGB", (sum(t.width + GAP for t in tiles) + GAP, HEIGHT + CAPTION + 2 * GAP), (235, 235, 235))
    x = GAP
    for tile in tiles:
        sheet.paste(tile, (x, GAP))
        x += tile.width + GAP
    out = Path(__file__).with_name("attack_gallery.png")
    sheet.save(out, optimize=True)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
