"""A photo-like copy of a printed label: what a phone camera makes of it, made with Pillow."""

from __future__ import annotations

from PIL import Image, ImageFilter


def photograph(
    page: Image.Image, *, angle: float, scale: float, blur: float, noise: float
) -> Image.Image:
    """Scale, rotate (on a grey desk), blur and add sensor noise to a label's image.

    ``noise`` is the weight (0..1) of Gaussian noise blended in.
    """
    gray = page.convert("L")
    size = (max(1, round(gray.width * scale)), max(1, round(gray.height * scale)))
    shot = gray.resize(size, Image.Resampling.BILINEAR)
    shot = shot.rotate(angle, resample=Image.Resampling.BILINEAR, expand=True, fillcolor=190)
    shot = shot.filter(ImageFilter.GaussianBlur(blur))
    return Image.blend(shot, Image.effect_noise(shot.size, 40), noise)
