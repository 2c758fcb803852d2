"""Thumbnails in a wrapping grid, each with a caption and, on hover, its name:
the dataset explorer's pages and the inference results' image lists."""
import base64
import html
import io

import numpy as np
from PIL import Image

from digits_engine.plugins.views import boxes, segmentation

THUMB = 96  # px on the page; larger images are shrunk to this before they are sent


def thumbnail_png(pixels: np.ndarray, label=None, classes: int = 2) -> bytes:
    """A PNG of at most THUMB px a side; a segmentation sample (`label` a mask) shows its mask over the
    image, a detection sample (`label` {"boxes", "classes"}) its boxes."""
    if isinstance(label, np.ndarray):
        pixels = segmentation.blend(as_rgb(pixels), label[:, :, 0],
                                    segmentation.colour_table("paired", max(classes, 2)), 0.5)
    elif isinstance(label, dict):
        scale = max(1, THUMB // max(pixels.shape[:2]))  # outlines drawn at the size shown stay sharp
        pixels = boxes.draw_boxes(boxes.enlarge(as_rgb(pixels), scale), label["boxes"], label["classes"], None,
                                  line_width=1, scale=scale)
    image = Image.fromarray(pixels[:, :, 0] if pixels.ndim == 3 and pixels.shape[2] == 1 else pixels)
    image.thumbnail((THUMB, THUMB))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def as_rgb(pixels: np.ndarray) -> np.ndarray:
    return np.repeat(pixels, 3, axis=2) if pixels.shape[2] == 1 else pixels


def grid_html(cells: list[dict]) -> str:
    """cells: {"png": bytes, "name": shown on hover, "label": the caption}."""
    figures = []
    for cell in cells:
        title = html.escape(f"{cell['name']}\n{cell['label']}", quote=True)
        data = base64.b64encode(cell["png"]).decode()
        figures.append(
            f'<figure style="margin:0;width:{THUMB}px;text-align:center" title="{title}">'
            f'<img src="data:image/png;base64,{data}" alt="{html.escape(cell["name"], quote=True)}" '
            f'style="width:{THUMB}px;height:{THUMB}px;object-fit:contain;image-rendering:pixelated">'
            f'<figcaption style="font-size:0.75em;overflow:hidden;white-space:nowrap;text-overflow:ellipsis">'
            f'{html.escape(cell["label"])}</figcaption></figure>')
    return f'<div style="display:flex;flex-wrap:wrap;gap:8px">{"".join(figures)}</div>'
