"""How close `render_figstep` comes to FigStep's own images.

Renders the instruction of every SafeBench-Tiny item that has an original FigStep image
(images_SafeBench-Tiny/query_ForbidQI_{category}_{task}_6.png, 30 of them) and compares pixel by
pixel. Prints the per-image and mean absolute difference (0-255 scale, over all pixels and channels),
writes benchmarks/results/figstep_fidelity.json and a side-by-side picture (original | rendered)
to docs/img/figstep_side_by_side.png.

    .venv/bin/python benchmarks/figstep_fidelity.py [--data ../shared/data/benchmarks/figstep]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from PIL import Image, ImageDraw, features

from safemlrm.attacks._fonts import load_font
from safemlrm.attacks.figstep import render_figstep

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "benchmarks" / "figstep"


def compare(data: Path) -> list[dict[str, Any]]:
    rows = []
    with (data / "SafeBench-Tiny.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            name = f"query_ForbidQI_{row['category_id']}_{row['task_id']}_6.png"
            original_path = data / "images_SafeBench-Tiny" / name
            if not original_path.is_file():
                continue
            original = np.asarray(Image.open(original_path).convert("RGB"), dtype=np.int16)
            rendered = np.asarray(render_figstep(row["instruction"]), dtype=np.int16)
            diff = np.abs(original - rendered)
            rows.append(
                {
                    "image": name,
                    "instruction": row["instruction"],
                    "mean_abs_diff": float(diff.mean()),
                    "pixels_differing": int((diff.sum(axis=2) > 0).sum()),
                    "max_abs_diff": int(diff.max()),
                }
            )
    return rows


def side_by_side(data: Path, names: list[str], out: Path, scale: float = 0.5) -> None:
    """Rows of original | rendered pairs, half size, with a caption over each column."""
    size = int(760 * scale)
    gap, caption = 12, 28
    pairs = []
    for name in names:
        original = Image.open(data / "images_SafeBench-Tiny" / name).convert("RGB")
        category, task = name.removeprefix("query_ForbidQI_").removesuffix("_6.png").split("_")
        with (data / "SafeBench-Tiny.csv").open(newline="", encoding="utf-8") as handle:
            instruction = next(
                r["instruction"] for r in csv.DictReader(handle) if (r["category_id"], r["task_id"]) == (category, task)
            )
        pairs.append((original, render_figstep(instruction)))
    sheet = Image.new("RGB", (2 * size + 3 * gap, caption + len(pairs) * (size + gap) + gap), (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    font = load_font("liberation-sans", 16)
    draw.text((gap, 6), "FigStep original", fill=(0, 0, 0), font=font)
    draw.text((2 * gap + size, 6), "safemlrm render_figstep", fill=(0, 0, 0), font=font)
    for index, (original, rendered) in enumerate(pairs):
        top = caption + index * (size + gap)
        sheet.paste(original.resize((size, size), Image.Resampling.LANCZOS), (gap, top))
        sheet.paste(rendered.resize((size, size), Image.Resampling.LANCZOS), (2 * gap + size, top))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the figstep benchmark folder")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "figstep_fidelity.json")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "figstep_side_by_side.png")
    args = parser.parse_args(argv)
    if not (args.data / "images_SafeBench-Tiny").is_dir():
        print(f"no FigStep images under {args.data}", file=sys.stderr)
        return 2
    rows = compare(args.data)
    for row in rows:
        print(f"{row['image']:<30} mean |diff| {row['mean_abs_diff']:.6f}  pixels differing {row['pixels_differing']}")
    mean = float(np.mean([r["mean_abs_diff"] for r in rows]))
    identical = sum(r["pixels_differing"] == 0 for r in rows)
    print(f"\n{len(rows)} images: mean absolute pixel difference {mean:.6g} (0-255 scale); {identical} identical")
    result = {
        "images": len(rows),
        "identical": identical,
        "mean_abs_diff": mean,
        "max_pixels_differing": max(r["pixels_differing"] for r in rows),
        "per_image": rows,
        "conditions": {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "pillow": PIL.__version__,
            "freetype": features.version("freetype2"),
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    # Show the worst matches first: the pictures where a difference could be seen at all.
    worst = [r["image"] for r in sorted(rows, key=lambda r: -r["mean_abs_diff"])[:2]]
    first = [r["image"] for r in rows if r["image"] not in worst][:2]
    side_by_side(args.data, first + worst, args.png)
    print(f"wrote {args.json.relative_to(ROOT)} and {args.png.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
