"""The app's favicon, drawn here so that nothing the browser loads leaves the machine."""

from __future__ import annotations

from PIL import Image, ImageDraw


def icon() -> Image.Image:
    """The app's favicon drawn here (a shield), served by the app itself: a ":material/..." page icon makes the
    browser fetch it from fonts.gstatic.com, and nothing the browser loads may leave the machine."""
    img = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.polygon([(32, 4), (58, 14), (54, 40), (32, 60), (10, 40), (6, 14)], fill=(31, 119, 180, 255))
    draw.polygon([(32, 14), (48, 20), (45, 38), (32, 50)], fill=(255, 255, 255, 200))
    return img
