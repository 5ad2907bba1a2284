"""Font lookup for the renderers: the fonts the original attacks used, or open metric twins of them.

Pillow searches the system font folders for a bare file name, so a font installed by the OS package
(Debian: fonts-liberation, fonts-freefont-ttf) is found without a path. A missing font falls back to
DejaVu with a warning that names the font and the package to install: the images then differ from
the originals.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from PIL import ImageFont

log = logging.getLogger(__name__)

# name -> (file names to try, install hint, fallback file)
KNOWN_FONTS: dict[str, tuple[tuple[str, ...], str, str]] = {
    # Liberation Sans has Arial's metrics; MM-SafetyBench rendered with Arial.
    "liberation-sans": (
        ("LiberationSans-Regular.ttf",),
        "Debian/Ubuntu: apt-get install fonts-liberation",
        "DejaVuSans.ttf",
    ),
    # FigStep rendered with FreeMonoBold.ttf from GNU FreeFont.
    "freemono-bold": (
        ("FreeMonoBold.ttf",),
        "Debian/Ubuntu: apt-get install fonts-freefont-ttf",
        "DejaVuSansMono-Bold.ttf",
    ),
}

_EXTRA_DIRS = (
    "/usr/share/fonts/truetype/liberation",
    "/usr/share/fonts/truetype/liberation2",
    "/usr/share/fonts/liberation-sans",
    "/usr/share/fonts/truetype/freefont",
    "/usr/share/fonts/gnu-free",
    "/usr/share/fonts/TTF",
    "/usr/share/fonts/truetype/dejavu",
    "/Library/Fonts",
    str(Path.home() / "Library/Fonts"),
)


class FontNotFoundError(RuntimeError):
    pass


def _try(name: str, size: int) -> ImageFont.FreeTypeFont | None:
    candidates = [name] if "/" in name or "\\" in name else [name, *(str(Path(d) / name) for d in _EXTRA_DIRS)]
    for candidate in candidates:
        try:
            return ImageFont.truetype(candidate, size)
        except OSError:
            continue
    return None


@functools.lru_cache(maxsize=64)
def load_font(font: str, size: int) -> ImageFont.FreeTypeFont:
    """A TrueType font by known name ("liberation-sans", "freemono-bold"), file name or path.

    A known font that is missing falls back to DejaVu with a warning; any other missing font is an
    error.
    """
    if font in KNOWN_FONTS:
        files, hint, fallback = KNOWN_FONTS[font]
        for file_name in files:
            found = _try(file_name, size)
            if found is not None:
                return found
        substitute = _try(fallback, size)
        if substitute is None:
            raise FontNotFoundError(f"font {files[0]} not found and no fallback {fallback} either; install it ({hint})")
        log.warning(
            "font %s not found (%s); using %s instead, so rendered images will differ from the originals",
            files[0],
            hint,
            fallback,
        )
        return substitute
    found = _try(font, size)
    if found is None:
        raise FontNotFoundError(f"font {font!r} not found (give a .ttf path or an installed font file name)")
    return found


def font_available(font: str) -> bool:
    """Whether a known font (or font file) is installed, without falling back."""
    files = KNOWN_FONTS[font][0] if font in KNOWN_FONTS else (font,)
    return any(_try(name, 12) is not None for name in files)
