"""Segmentation view: the predicted classes overlaid on the image in
per-class colours, with an opacity slider, a legend and, when the ground truth
is known, the IoU of each class.

    view = Visualization(labels=["background", "left ventricle"], opacity=0.5)
    data = view.process_data("IM-0001-0048.dcm", image, scores)   # scores: HxWxK, or an HxW class map
    view.render(data, st)

Class 0 is the background: it is never painted. The model output is either
HxWxK class scores or probabilities (the class of a pixel is the argmax over
K; K = 2 is the binary case), an HxW / HxWx1 map of class ids, or an HxWx1
foreground probability (a sigmoid output, thresholded at 0.5).

Colours (config `colormap`):
- "paired": class c gets colour c of matplotlib's qualitative "Paired" map
  (12 colours, repeating);
- "palette": class c gets `palette[c]`, the dataset's palette (a list of RGB
  triples or a flat r, g, b, r, g, b... list); "paired" when there is none;
- "none": gray levels, class c at 255 * c / (classes - 1).

`show` picks what the overlay draws: "fill" (the classes blended at
`opacity`), "outline" (the class edges in full colour) or "both".
"""
import numpy as np

from ...fields import Field, validate
from ..interfaces import ViewPlugin
from . import as_array, as_rgb_image, shape_text, widget_key

VIEW_ID = "image-segmentation"

# matplotlib's "Paired" colormap (ColorBrewer), as 8-bit RGB: pairs of light and dark blue, green, red,
# orange, purple, and yellow/brown.
PAIRED = (
    (166, 206, 227), (31, 120, 180), (178, 223, 138), (51, 160, 44), (251, 154, 153), (227, 26, 28),
    (253, 191, 111), (255, 127, 0), (202, 178, 214), (106, 61, 154), (255, 255, 153), (177, 89, 40),
)
COLORMAPS = ("paired", "palette", "none")
SHOW = ("fill", "outline", "both")
MAX_CLASSES = 256  # the class map is uint8


def colour_table(colormap: str, classes: int, palette=None) -> np.ndarray:
    """classes x 3 uint8: the colour of each class id (row 0, the background, is black but for a palette's own)."""
    if colormap == "none":
        levels = np.rint(np.arange(classes) * (255.0 / max(classes - 1, 1)))
        return np.repeat(levels[:, None], 3, axis=1).astype(np.uint8)
    if colormap == "palette" and palette is not None and len(palette):
        colours = parse_palette(palette)
        return colours[np.arange(classes) % len(colours)]
    table = np.array([PAIRED[c % len(PAIRED)] for c in range(classes)], np.uint8)
    table[0] = 0
    return table


def parse_palette(palette) -> np.ndarray:
    """A list of (r, g, b) triples, or a flat list r, g, b, r, g, b... (PIL's form), as Nx3 uint8."""
    colours = np.asarray(palette)
    if colours.ndim == 1 and colours.size % 3 == 0:
        colours = colours.reshape(-1, 3)
    if colours.ndim != 2 or colours.shape[1] != 3 or not np.issubdtype(colours.dtype, np.number) \
            or colours.min() < 0 or colours.max() > 255:
        raise ValueError(f"The palette has shape {shape_text(colours.shape)}; expected a list of (r, g, b) "
                         "colours with values 0 to 255, one per class.")
    return colours.astype(np.uint8)


def class_edges(classes: np.ndarray) -> np.ndarray:
    """HxW bool: the non-background pixels that have a 4-neighbour of another class.

    The inner border of each class region; the image border itself is not an edge."""
    edges = np.zeros(classes.shape, bool)
    vertical = classes[1:, :] != classes[:-1, :]
    horizontal = classes[:, 1:] != classes[:, :-1]
    edges[1:, :] |= vertical
    edges[:-1, :] |= vertical
    edges[:, 1:] |= horizontal
    edges[:, :-1] |= horizontal
    return edges & (classes != 0)


def blend(image: np.ndarray, classes: np.ndarray, colours: np.ndarray, opacity: float,
          show: str = "fill", outline: np.ndarray | None = None) -> np.ndarray:
    """The overlay: `image` (HxWx3 uint8) with every non-background pixel mixed with its class colour,
    round((1 - opacity) * pixel + opacity * colour), and with `show` "outline" or "both", the class
    edges drawn in full colour. Background pixels are left as they are."""
    overlay = image.copy()
    painted = colours[classes]  # HxWx3
    if show in ("fill", "both"):
        fill = classes != 0
        mixed = (1.0 - opacity) * image[fill].astype(np.float64) + opacity * painted[fill].astype(np.float64)
        overlay[fill] = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    if show in ("outline", "both"):
        edges = class_edges(classes) if outline is None else outline
        overlay[edges] = painted[edges]
    return overlay


def as_class_map(output_data, height: int, width: int) -> tuple[np.ndarray, int]:
    """(HxW uint8 class map, number of output classes K, or 0 when the output already held class ids)."""
    output = as_array(output_data, "model output")
    expected = (f"expected {height}x{width}xK class scores (K classes, the input's height and width), "
                f"or a {height}x{width} map of class ids")
    if output.ndim == 4 and output.shape[0] == 1:  # a batch of one
        output = output[0]
    if output.ndim == 3 and output.shape[:2] != (height, width) and output.shape[1:] == (height, width):
        output = np.moveaxis(output, 0, -1)  # KxHxW, channels first (Caffe, Torch)
    if output.ndim not in (2, 3) or output.shape[:2] != (height, width) or 0 in output.shape:
        raise ValueError(f"The model output has shape {shape_text(output.shape)}; {expected}.")
    if output.ndim == 3 and output.shape[2] > 1:
        if output.shape[2] > MAX_CLASSES:
            raise ValueError(f"The model output has shape {shape_text(output.shape)}: {output.shape[2]} classes, "
                             f"more than the {MAX_CLASSES} this view can show.")
        if np.issubdtype(output.dtype, np.floating) and not np.isfinite(output).all():
            raise ValueError("The model output contains NaN or infinite scores: the model has diverged "
                             "(try a lower learning rate).")
        return np.argmax(output, axis=2).astype(np.uint8), output.shape[2]
    values = output.reshape(height, width)
    if values.dtype == bool:
        return values.astype(np.uint8), 2
    if np.issubdtype(values.dtype, np.floating):
        if not np.isfinite(values).all():
            raise ValueError("The model output contains NaN or infinite values: the model has diverged "
                             "(try a lower learning rate).")
        if (values != np.round(values)).any():
            if values.min() < 0 or values.max() > 1:
                raise ValueError(f"The model output has shape {shape_text(output.shape)} with fractional values "
                                 f"outside 0..1; {expected} (or a foreground probability, 0 to 1).")
            return (values >= 0.5).astype(np.uint8), 2  # sigmoid: binary segmentation
    return checked_ids(values, "model output", output.shape), 0


def checked_ids(values: np.ndarray, what: str, shape) -> np.ndarray:
    if values.size and (values.min() < 0 or values.max() >= MAX_CLASSES):
        raise ValueError(f"The {what} (shape {shape_text(shape)}) holds class ids from {values.min():g} to "
                         f"{values.max():g}; expected whole numbers from 0 to {MAX_CLASSES - 1}.")
    return values.astype(np.uint8)


def as_ground_truth(ground_truth, height: int, width: int) -> np.ndarray:
    truth = as_array(ground_truth, "ground truth")
    if truth.ndim == 3 and truth.shape[2] == 1:
        truth = truth[:, :, 0]
    if truth.shape != (height, width):
        raise ValueError(f"The ground truth has shape {shape_text(truth.shape)}; expected a {height}x{width} "
                         f"(or {height}x{width}x1) mask of class ids, the size of the input.")
    if truth.dtype == bool:
        return truth.astype(np.uint8)
    if np.issubdtype(truth.dtype, np.floating) and (truth != np.round(truth)).any():
        raise ValueError("The ground truth holds fractional values; expected whole class ids.")
    return checked_ids(truth, "ground truth", truth.shape)


def iou_per_class(classes: np.ndarray, truth: np.ndarray) -> dict[int, float]:
    """{class id: |prediction ∩ truth| / |prediction ∪ truth|} for each class in either."""
    result = {}
    for c in np.union1d(np.unique(classes), np.unique(truth)):
        predicted, actual = classes == c, truth == c
        result[int(c)] = float((predicted & actual).sum() / (predicted | actual).sum())
    return result


class Visualization(ViewPlugin):
    """Config: the `config_fields` (opacity, colormap, show), plus `labels` (class names, index = class id,
    0 = background) and `palette` (the dataset's colours) from the dataset."""

    def __init__(self, **config):
        super().__init__(**config)
        options = validate(self.config_fields(), {f.name: config.get(f.name) for f in self.config_fields()})
        self.opacity = options["opacity"]
        self.colormap = options["colormap"]
        self.show = options["show"]
        self.labels = [str(name) for name in (config.get("labels") or [])]
        self.palette = config.get("palette")
        if self.palette is not None and len(self.palette):
            parse_palette(self.palette)  # a bad palette is reported now, not on the first image

    @staticmethod
    def get_id() -> str:
        return VIEW_ID

    @staticmethod
    def get_title() -> str:
        return "Segmentation"

    @staticmethod
    def tasks() -> tuple[str, ...]:
        return ("segmentation",)

    @staticmethod
    def config_fields() -> list[Field]:
        return [
            Field("opacity", "Opacity", kind="float", default=0.5, minimum=0.0, maximum=1.0,
                  help="How strongly the class colours cover the image: 0 shows the image only, 1 the colours only."),
            Field("colormap", "Colours", kind="choice", default="paired", choices=COLORMAPS,
                  choice_labels={"paired": "Paired (12 colours)", "palette": "The dataset's palette",
                                 "none": "Gray levels"},
                  help="The colour of each class. The dataset's palette falls back to Paired when it has none."),
            Field("show", "Show", kind="choice", default="fill", choices=SHOW,
                  choice_labels={"fill": "Filled classes", "outline": "Outlines", "both": "Both"}),
        ]

    def class_name(self, class_id: int, classes: int) -> str:
        if class_id < len(self.labels):
            return self.labels[class_id]
        if class_id == 0:
            return "background"
        return "foreground" if classes == 2 else f"class {class_id}"

    def process_data(self, input_id, input_data, output_data, ground_truth=None) -> dict:
        image = as_rgb_image(input_data)
        height, width = image.shape[:2]
        classes, k = as_class_map(output_data, height, width)
        truth = None if ground_truth is None else as_ground_truth(ground_truth, height, width)
        count = max(k, len(self.labels), int(classes.max()) + 1, 0 if truth is None else int(truth.max()) + 1, 2)
        notes = []
        colormap = self.colormap
        if colormap == "palette" and (self.palette is None or not len(self.palette)):
            notes.append("The dataset has no palette: the classes are shown in the Paired colours.")
            colormap = "paired"
        colours = colour_table(colormap, count, self.palette)
        outline = class_edges(classes)
        ids, pixels = np.unique(classes, return_counts=True)
        legend = [(int(c), self.class_name(int(c), count), tuple(int(v) for v in colours[c]), int(n))
                  for c, n in zip(ids, pixels)]
        data = {
            "input_id": input_id,
            "image": image,
            "classes": classes,
            "colours": colours,
            "opacity": self.opacity,
            "show": self.show,
            "overlay": blend(image, classes, colours, self.opacity, self.show, outline),
            "outline": outline,
            "mask": colours[classes],
            "legend": legend,
            "class_names": [self.class_name(c, count) for c in range(count)],
            "ground_truth": truth,
            "iou": None,
            "mean_iou": None,
            "notes": notes,
        }
        if truth is not None:
            data["iou"] = iou_per_class(classes, truth)
            data["mean_iou"] = float(np.mean(list(data["iou"].values())))
            data["pixel_accuracy"] = float((classes == truth).mean())
        return data

    def render(self, data, st) -> None:
        for note in data.get("notes", ()):
            st.info(note)
        opacity = st.slider("Opacity", 0.0, 1.0, float(data["opacity"]), 0.05,
                            key=widget_key(VIEW_ID, "opacity", data["input_id"]),
                            help="Re-blends the classes over the image; the model is not run again.")
        overlay = data["overlay"] if opacity == data["opacity"] else \
            blend(data["image"], data["classes"], data["colours"], opacity, data["show"], data["outline"])
        truth = data.get("ground_truth")
        columns = st.columns(3 if truth is not None else 2)
        columns[0].image(data["image"], caption=f"Input: {data['input_id']}", width="stretch", output_format="PNG")
        columns[1].image(overlay, caption="Prediction", width="stretch", output_format="PNG")
        if truth is not None:
            truth_overlay = blend(data["image"], truth, data["colours"], opacity, data["show"])
            columns[2].image(truth_overlay, caption="Ground truth", width="stretch", output_format="PNG")
        st.markdown(legend_markdown(data["legend"]), unsafe_allow_html=True)
        if data.get("iou") is not None:
            st.metric("Mean IoU", f"{data['mean_iou']:.3f}",
                      help="Intersection over union of each class present in the prediction or the ground "
                           "truth, averaged.")
            names = data["class_names"]
            rows = [{"class": c, "name": names[c] if c < len(names) else f"class {c}", "IoU": round(v, 4)}
                    for c, v in data["iou"].items()]
            st.dataframe(rows, hide_index=True, key=widget_key(VIEW_ID, "iou", data["input_id"]))


def legend_markdown(legend) -> str:
    """One line per class: a coloured square, the id and name, and its share of the pixels."""
    total = sum(entry[3] for entry in legend) or 1
    items = []
    for class_id, name, (r, g, b), count in legend:
        swatch = (f'<span style="display:inline-block;width:0.9em;height:0.9em;background:rgb({r},{g},{b});'
                  'border:1px solid #888;vertical-align:middle"></span>')
        items.append(f"{swatch} {class_id} {escape(name)}: {count} px ({count / total:.1%})")
    return "&nbsp;&nbsp; ".join(items)


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
