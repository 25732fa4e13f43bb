"""Digits from handwriting-style fonts that Debian packages, where they are installed.

Optional: with none installed the font family is simply empty. The Debian packages:
fonts-humor-sans fonts-dkg-handwriting fonts-comic-neue fonts-breip
fonts-rufscript fonts-bwht fonts-klee fonts-kristi.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_ROOT = Path("/usr/share/fonts")
HANDWRITING_FONTS = {
    "humor-sans": "truetype/humor-sans/Humor-Sans.ttf",
    "dkg": "truetype/fifthhorseman/dkg.ttf",
    "dkg-bold": "truetype/fifthhorseman/dkgBd.ttf",
    "dkg-italic": "truetype/fifthhorseman/dkgIt.ttf",
    "comic-neue": "opentype/comic-neue/ComicNeue-Regular.otf",
    "comic-neue-bold": "opentype/comic-neue/ComicNeue-Bold.otf",
    "comic-neue-light-italic": "opentype/comic-neue/ComicNeue-LightItalic.otf",
    "breip": "truetype/breip/Breip.ttf",
    "rufscript": "truetype/rufscript/Rufscript010.ttf",
    "bwht-build": "opentype/bwht/BecauseWeBuild-Regular.otf",
    "bwht-connect": "opentype/bwht/BecauseWeConnect-Regular.otf",
    "bwht-create": "opentype/bwht/BecauseWeCreate-Regular.otf",
    "bwht-learn": "opentype/bwht/BecauseWeLearn-Regular.otf",
    "bwht-mentor": "opentype/bwht/BecauseWeMentor-Regular.otf",
    "bwht-organize": "opentype/bwht/BecauseWeOrganize-Regular.otf",
    "klee": "truetype/klee/KleeOne-Regular.ttf",
    "klee-semibold": "truetype/klee/KleeOne-SemiBold.ttf",
    "kristi": "truetype/kristi/Kristi.ttf",
}
"""Font name -> path under FONT_ROOT."""


def available_fonts(root: Path = FONT_ROOT) -> dict[str, Path]:
    """The handwriting fonts installed on this machine, by name (sorted, so seeds are stable)."""
    found = {name: root / rel for name, rel in sorted(HANDWRITING_FONTS.items())}
    return {name: path for name, path in found.items() if path.is_file()}


@cache
def font(path: Path, size: int) -> ImageFont.FreeTypeFont:
    """A font file at a size, loaded once per process."""
    return ImageFont.truetype(str(path), size)


def ink_from_font(path: Path, digit: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """One digit of a font as (H, W) float32 ink in [0, 1], at about `height` px, slanted a bit.

    Some are emboldened (FreeType's stroke) to give thick strokes as well as the font's own.
    """
    size = max(8, int(height * 1.4))
    bold = int(rng.integers(1, max(1, size // 20) + 1)) if rng.random() < 0.3 else 0
    face = font(path, size)
    pad = size // 2 + bold
    canvas = Image.new("L", (2 * size + 2 * pad, 2 * size + 2 * pad), 0)
    ImageDraw.Draw(canvas).text(
        (pad, pad), str(digit), fill=255, font=face, stroke_width=bold, stroke_fill=255
    )
    shear = rng.uniform(-0.2, 0.3)
    angle = rng.uniform(-8.0, 8.0)
    canvas = canvas.rotate(angle, resample=Image.Resampling.BILINEAR)
    w, h = canvas.size
    canvas = canvas.transform(
        (w, h),
        Image.Transform.AFFINE,
        (1, shear, -shear * h / 2, 0, 1, 0),
        resample=Image.Resampling.BILINEAR,
    )
    box = canvas.getbbox()
    if box is None:
        raise ValueError(f"{path.name} draws nothing for {digit}")
    return np.asarray(canvas.crop(box), dtype=np.float32) / 255.0
