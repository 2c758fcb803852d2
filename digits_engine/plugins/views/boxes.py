"""Bounding-box view: a detection model's boxes drawn on the image, each with
its class and score, a colour per class, and a score-threshold slider.

    view = Visualization(labels=["car", "van"], threshold=0.3)
    data = view.process_data("000012.png", image, {"boxes": [[4, 5, 20, 18]], "scores": [0.9], "classes": [0]},
                             ground_truth={"boxes": [[5, 5, 21, 19]], "classes": [0]})
    view.render(data, st)

The output is the decoded detections of one image (digits_engine.detection_decode's
form: {"boxes": Mx4 (left, top, right, bottom in the input's pixels), "scores": M,
"classes": M}, or a list holding one such dict), or the `digits classify --json`
form: a list of {"label", "score", "box"}. Classes are 0-based, without a
background class. The ground truth is {"boxes": Nx4, "classes": N}, as
image_records.read_record returns it; its boxes are drawn dashed.

`draw_boxes` is the drawing the inference results reuse.
"""
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ...fields import Field, validate
from ..interfaces import ViewPlugin
from . import as_array, as_rgb_image, shape_text, widget_key
from .segmentation import escape

VIEW_ID = "image-bounding-boxes"

# Tableau 10, as 8-bit RGB: ten colours that stay apart on photos and on each other.
COLOURS = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
DASH = 4  # a dashed (ground-truth) edge: DASH pixels drawn, DASH pixels skipped
MIN_DISPLAY = 320  # small images are enlarged (nearest neighbour) so the labels stay readable


def class_colour(class_id: int) -> tuple[int, int, int]:
    return COLOURS[class_id % len(COLOURS)]


def as_detections(output_data, labels: list[str]) -> dict:
    """{"boxes": Mx4 float64, "scores": M float64, "classes": M int64} from any accepted form, or ValueError."""
    if isinstance(output_data, (list, tuple)) and len(output_data) == 1 and isinstance(output_data[0], dict) \
            and "boxes" in output_data[0]:
        output_data = output_data[0]  # a batch of one
    if isinstance(output_data, (list, tuple)) and all(isinstance(d, dict) and "box" in d for d in output_data):
        output_data = from_listing(output_data, labels)
    if not isinstance(output_data, dict) or not {"boxes", "scores", "classes"} <= set(output_data):
        raise ValueError("The bounding-box view expects decoded detections: {\"boxes\": Mx4, \"scores\": M, "
                         "\"classes\": M}, or a list of {\"label\", \"score\", \"box\"}. Is this a detection model?")
    detections = as_boxes(output_data, "detections")
    scores = as_array(output_data["scores"], "detection scores").astype(np.float64).reshape(-1)
    if scores.size != len(detections["boxes"]):
        raise ValueError(f"The detections hold {len(detections['boxes'])} boxes but {scores.size} scores; "
                         "expected one score per box.")
    if not np.isfinite(scores).all():
        raise ValueError("The detection scores contain NaN or infinite values: the model has diverged "
                         "(try a lower learning rate).")
    order = np.argsort(-scores, kind="stable")
    return {"boxes": detections["boxes"][order], "scores": scores[order], "classes": detections["classes"][order]}


def from_listing(listing, labels: list[str]) -> dict:
    """The `digits classify --json` form, [{"label", "score", "box"}], as arrays."""
    classes = []
    for item in listing:
        label = item.get("label")
        if label not in labels:
            raise ValueError(f"A detection has the label {label!r}, which is not a class of this model "
                             f"({', '.join(labels) or 'no labels given'}).")
        classes.append(labels.index(label))
    return {"boxes": [item["box"] for item in listing], "scores": [item.get("score", 1.0) for item in listing],
            "classes": classes}


def as_boxes(value, what: str) -> dict:
    """{"boxes": Nx4 float64, "classes": N int64} from a dict holding both, or ValueError naming `what`."""
    boxes = as_array(value["boxes"], f"{what} boxes").astype(np.float64)
    if boxes.size == 0:
        boxes = boxes.reshape(0, 4)
    if boxes.ndim == 1 and boxes.size == 4:
        boxes = boxes[None, :]
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"The {what} boxes have shape {shape_text(boxes.shape)}; expected Nx4 "
                         "(left, top, right, bottom in pixels).")
    if not np.isfinite(boxes).all():
        raise ValueError(f"The {what} boxes contain NaN or infinite coordinates.")
    upside_down = np.flatnonzero((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1]))
    if upside_down.size:
        l, t, r, b = boxes[upside_down[0]]
        raise ValueError(f"The {what} box {upside_down[0]} is ({l:g}, {t:g}, {r:g}, {b:g}): its right edge is left "
                         "of its left edge or its bottom above its top; expected left, top, right, bottom.")
    classes = as_array(value["classes"], f"{what} classes").reshape(-1)
    if classes.size != len(boxes):
        raise ValueError(f"The {what} hold {len(boxes)} boxes but {classes.size} classes; expected one class "
                         "per box.")
    if classes.size and (np.any(classes != np.round(classes)) or classes.min() < 0):
        raise ValueError(f"The {what} classes must be whole numbers from 0; got {classes.min():g} "
                         f"to {classes.max():g}.")
    return {"boxes": boxes, "classes": classes.astype(np.int64)}


def display_scale(height: int, width: int) -> int:
    """The whole-number enlargement that brings the longer side to at least MIN_DISPLAY pixels."""
    return max(1, math.ceil(MIN_DISPLAY / max(height, width)))


def enlarge(image: np.ndarray, scale: int) -> np.ndarray:
    return image if scale == 1 else np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def draw_boxes(image: np.ndarray, boxes, classes, names: list[str] | None, scores=None, dashed: bool = False,
               line_width: int = 2, scale: int = 1) -> np.ndarray:
    """A copy of `image` (HxWx3 uint8, already enlarged `scale` times) with each box (in the un-enlarged
    image's pixels) outlined in its class colour and labelled "name score" (or "name" without scores;
    no label when `names` is None).
    Boxes are clipped to the image; `dashed` draws broken edges (the ground truth)."""
    picture = Image.fromarray(image)
    pen = ImageDraw.Draw(picture)
    font = ImageFont.load_default()
    for i, (box, class_id) in enumerate(zip(np.asarray(boxes).reshape(-1, 4), classes)):
        left, top, right, bottom = pixel_box(box, scale, *image.shape[:2])
        colour = class_colour(int(class_id))
        if dashed:
            corners = [(left, top), (right, top), (right, bottom), (left, bottom), (left, top)]
            for start, end in zip(corners, corners[1:]):
                dashed_line(pen, start, end, colour, line_width)
        else:
            pen.rectangle((left, top, right, bottom), outline=colour, width=line_width)
        if names is None:
            continue  # outlines only (thumbnails)
        text = names[int(class_id)] if scores is None else f"{names[int(class_id)]} {float(scores[i]):.2f}"
        text_bottom = pen.textbbox((0, 0), text, font=font)[3]
        at = (left, top - text_bottom - 1) if top - text_bottom - 1 >= 0 else (left, bottom + 1)  # above, or below
        # predictions: white on the class colour; the ground truth: the class colour on white
        pen.rectangle(pen.textbbox(at, text, font=font), fill=(255, 255, 255) if dashed else colour)
        pen.text(at, text, fill=colour if dashed else (255, 255, 255), font=font)
    return np.asarray(picture)


def pixel_box(box, scale: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The first and last pixel columns and rows a box covers once enlarged `scale` times, inside the image.

    Box edges are pixel boundaries: (0, 0, 2, 1) covers the pixels (0, 0) and (1, 0)."""
    left, top, right, bottom = (float(v) * scale for v in box)
    left, right = (min(max(round(v), 0), width - 1) for v in (left, right - 1))
    top, bottom = (min(max(round(v), 0), height - 1) for v in (top, bottom - 1))
    return left, top, max(left, right), max(top, bottom)  # a box under a pixel wide is one pixel wide


def dashed_line(pen: ImageDraw.ImageDraw, start, end, colour, width: int) -> None:
    """A horizontal or vertical line from `start` to `end`, DASH pixels on, DASH off."""
    (x0, y0), (x1, y1) = start, end
    length = max(abs(x1 - x0), abs(y1 - y0))
    for offset in range(0, length + 1, 2 * DASH):
        stop = min(offset + DASH - 1, length)
        fraction = (offset / length, stop / length) if length else (0, 0)
        a = (round(x0 + (x1 - x0) * fraction[0]), round(y0 + (y1 - y0) * fraction[0]))
        b = (round(x0 + (x1 - x0) * fraction[1]), round(y0 + (y1 - y0) * fraction[1]))
        pen.line((a, b), fill=colour, width=width)


def picture(data: dict, threshold: float) -> np.ndarray:
    """The image of `data` (from process_data) enlarged for display, the ground truth dashed and the
    detections scoring at least `threshold` drawn over it."""
    scale = display_scale(*data["image"].shape[:2])
    image = enlarge(data["image"], scale)
    names = data["class_names"]
    if data["truth"] is not None:
        image = draw_boxes(image, data["truth"]["boxes"], data["truth"]["classes"], names, dashed=True, scale=scale)
    keep = data["scores"] >= threshold
    return draw_boxes(image, data["boxes"][keep], data["classes"][keep], names, data["scores"][keep], scale=scale)


class Visualization(ViewPlugin):
    """Config: the `config_fields` (threshold), plus `labels` (class names, index = class id, no background)
    from the dataset."""

    def __init__(self, **config):
        super().__init__(**config)
        self.threshold = validate(self.config_fields(), {"threshold": config.get("threshold")})["threshold"]
        self.labels = [str(name) for name in (config.get("labels") or [])]

    @staticmethod
    def get_id() -> str:
        return VIEW_ID

    @staticmethod
    def get_title() -> str:
        return "Bounding boxes"

    @staticmethod
    def tasks() -> tuple[str, ...]:
        return ("detection",)

    @staticmethod
    def config_fields() -> list[Field]:
        return [Field("threshold", "Score threshold", kind="float", default=0.3, minimum=0.0, maximum=1.0,
                      help="Boxes scoring below this are hidden. The slider under each image changes it "
                           "without running the model again.")]

    def check_classes(self, classes: np.ndarray, what: str) -> None:
        if self.labels and classes.size and classes.max() >= len(self.labels):
            raise ValueError(f"The {what} hold class id {classes.max()} but the model has {len(self.labels)} "
                             f"classes (ids 0 to {len(self.labels) - 1}: {', '.join(self.labels)}). "
                             "Was the model trained on another dataset?")

    def process_data(self, input_id, input_data, output_data, ground_truth=None) -> dict:
        image = as_rgb_image(input_data)
        detections = as_detections(output_data, self.labels)
        self.check_classes(detections["classes"], "detections")
        truth = None if ground_truth is None else as_boxes(ground_truth, "ground truth")
        if truth is not None:
            self.check_classes(truth["classes"], "ground truth")
        seen = [detections["classes"]] + ([truth["classes"]] if truth is not None else [])
        count = max([len(self.labels)] + [int(c.max()) + 1 for c in seen if c.size])
        return {
            "input_id": input_id,
            "image": image,
            **detections,
            "truth": truth,
            "class_names": [self.labels[c] if c < len(self.labels) else f"class {c}" for c in range(count)],
            "threshold": self.threshold,
        }

    def render(self, data, st) -> None:
        threshold = st.slider("Score threshold", 0.0, 1.0, float(data["threshold"]), 0.01,
                              key=widget_key(VIEW_ID, "threshold", data["input_id"]),
                              help="Hides the boxes scoring below it; the model is not run again.")
        keep = data["scores"] >= threshold
        st.markdown(header(data, int(keep.sum()), threshold), unsafe_allow_html=True)
        st.image(picture(data, threshold), caption=str(data["input_id"]), output_format="PNG")
        if keep.any():
            names = data["class_names"]
            rows = [{"class": names[int(c)], "score": round(float(s), 4),
                     "left": round(float(b[0]), 1), "top": round(float(b[1]), 1),
                     "right": round(float(b[2]), 1), "bottom": round(float(b[3]), 1)}
                    for b, s, c in zip(data["boxes"][keep], data["scores"][keep], data["classes"][keep])]
            st.dataframe(rows, hide_index=True, key=widget_key(VIEW_ID, "boxes", data["input_id"]))


def header(data: dict, shown: int, threshold: float) -> str:
    """"**2 of 5 boxes** with a score of at least 0.30 · ground truth (dashed): 1 box", then the boxes
    shown per class, each after a square of its colour (HTML)."""
    text = f"**{shown} of {box_count(len(data['scores']))}** with a score of at least {threshold:.2f}"
    if data["truth"] is not None:
        text += f" · ground truth (dashed): {box_count(len(data['truth']['classes']))}"
    keep = data["scores"] >= threshold
    ids, counts = np.unique(data["classes"][keep], return_counts=True)
    if ids.size:
        text += "  \n" + ", ".join(f"{swatch(class_colour(int(c)))} {escape(data['class_names'][c])}: {n}"
                                   for c, n in zip(ids, counts))
    return text


def swatch(colour) -> str:
    r, g, b = colour
    return (f'<span style="display:inline-block;width:0.9em;height:0.9em;background:rgb({r},{g},{b});'
            'border:1px solid #888;vertical-align:middle"></span>')


def box_count(count: int) -> str:
    return "1 box" if count == 1 else f"{count} boxes"
