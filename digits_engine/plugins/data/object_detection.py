"""The built-in object-detection data plugin: images and KITTI label files.

Each image of the image folder is paired with the label file of the same stem
in the label folder (000012.png <-> 000012.txt). An image without a label file
is a background-only sample; a label file without an image is reported.
`encode_entry` resizes the image to the dataset size (detection_resize), maps
its boxes the same way and turns class names into ids: "dontcare" boxes and
classes outside the class list are dropped, counted and reported with the
sample, never fatal.
"""
import random
import zlib
from pathlib import Path

import numpy as np

from digits_engine import config, detection_resize, kitti, server_paths
from digits_engine.fields import Field
from digits_engine.folder_parse import IMAGE_EXTENSIONS
from digits_engine.images import load_image
from digits_engine.plugins.interfaces import STAGES, DataPlugin


class DataIngestion(DataPlugin):
    """Object detection from an image folder and a KITTI label folder, for train and optionally val."""

    task = "detection"

    def __init__(self, is_inference_db: bool = False, **options):
        super().__init__(is_inference_db, **options)
        for name, default in (("val_pct", 20), ("width", 128), ("height", 128), ("channels", 3)):
            value = options.get(name)
            setattr(self, name, default if value in (None, "") else int(value))
        self.resize_mode = options.get("resize_mode") or "pad"
        if self.resize_mode not in detection_resize.RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {', '.join(detection_resize.RESIZE_MODES)}; "
                             f"got {self.resize_mode!r}.")
        self.classes = parse_classes(options.get("custom_classes"))
        seed = options.get("seed")
        if seed in (None, "") and not is_inference_db:  # stored with the dataset: its split can be redone
            seed = random.SystemRandom().randrange(2**31)
        self.seed = self.userdata["seed"] = seed
        self.problems: list[tuple[str, str]] = []
        self._stages = None

    @staticmethod
    def get_id():
        return "image-object-detection"

    @staticmethod
    def get_title():
        return "Object detection (KITTI)"

    @staticmethod
    def demo_options() -> dict:
        """The shapes-detection demo `make run` writes (DIGITS_DETECTION_DEMO_DIR), when it is there."""
        demo = config.detection_demo_dir()
        if not (demo / "classes.txt").is_file():
            return {}
        folders = {f"{split}_{kind}_folder": str(demo / split / f"{kind}s") for split in ("train", "val")
                   for kind in ("image", "label")}
        return {"name": "shapes-detection demo", **folders, "width": 64, "height": 64,
                "custom_classes": ",".join((demo / "classes.txt").read_text().split())}

    @staticmethod
    def dataset_fields():
        folder = "A folder on the server"
        return [
            Field("train_image_folder", "Training images", kind="path", required=True,
                  help=f"{folder} of images (png, jpg, ...); 000012.png is labelled by 000012.txt."),
            Field("train_label_folder", "Training labels", kind="path", required=True,
                  help=f"{folder} of KITTI label files: one object a line, 15 fields (class, truncation, "
                       "occlusion, alpha, left, top, right, bottom, 3 dimensions, 3 location values, "
                       "rotation_y) and an optional score."),
            Field("val_image_folder", "Validation images", kind="path",
                  help="Optional, with validation labels; empty: a share of the training images."),
            Field("val_label_folder", "Validation labels", kind="path"),
            Field("val_pct", "Validation images (%)", kind="int", default=20, minimum=0, maximum=90,
                  help="Used when no validation folders are given."),
            Field("custom_classes", "Classes",
                  help="Comma-separated class names, in id order (e.g. circle,square,triangle); empty: "
                       f"the KITTI classes ({', '.join(kitti.KITTI_CLASSES)}). Boxes of other classes "
                       "are dropped and reported; dontcare boxes are dropped and counted."),
            Field("width", "Width", kind="int", default=128, minimum=16, maximum=4096),
            Field("height", "Height", kind="int", default=128, minimum=16, maximum=4096),
            Field("resize_mode", "Resize", kind="choice", default="pad", choices=detection_resize.RESIZE_MODES,
                  help="pad: black on the right and bottom, scaled down only if larger (DIGITS' padding). "
                       "The boxes are moved with the pixels."),
            Field("channels", "Channels", kind="choice", default=3, choices=(1, 3), advanced=True),
            Field("seed", "Random seed", kind="int", advanced=True,
                  help="Seeds the train/validation split; empty picks one and stores it with the dataset."),
        ]

    def class_labels(self):
        return list(self.classes)

    def itemize_entries(self, stage):
        """(image path, label path or None) pairs of `stage`."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}.")
        if self._stages is None:
            self._stages = self._split()
        return self._stages.get(stage, [])

    def encode_entry(self, entry):
        """(HxWxC uint8 image at the dataset size, {"boxes", "classes", "dontcare", "problems", "source_size"})."""
        image_path, label_path = entry
        image = load_image(image_path)  # ImageError is a ValueError: the sample is skipped with its reason
        name = _short(label_path) if label_path else None
        parsed = kitti.read_label_file(label_path, name, (image.width, image.height)) if label_path \
            else kitti.LabelFile()
        boxes, classes, dontcare, problems = self._targets(parsed, name)
        pixels, boxes, kept = detection_resize.resize_with_boxes(
            image, boxes, self.height, self.width, self.channels, self.resize_mode,
            np.random.default_rng(zlib.crc32(str(image_path).encode())))  # fill's noise, reproducible
        if len(kept) < len(classes):
            problems.append(f"{name}: {len(classes) - len(kept)} box(es) fell outside the {self.width}x"
                            f"{self.height} image after {self.resize_mode}; dropped")
        if parsed.clipped:
            problems.append(f"{name}: {parsed.clipped} box(es) reached outside the image; clipped to it")
        return pixels, {"boxes": boxes, "classes": np.asarray(classes, np.int64)[kept],
                        "dontcare": dontcare, "problems": problems, "source_size": (image.width, image.height)}

    def _targets(self, parsed: kitti.LabelFile, name):
        ids = {c: i for i, c in enumerate(self.classes)}
        boxes, classes, dontcare, problems = [], [], 0, list(parsed.problems)
        for obj in parsed.objects:
            if obj.name == kitti.DONTCARE:
                dontcare += 1
            elif obj.name not in ids:
                problems.append(f"{name}, line {obj.line}: class {obj.name!r} is not in the class list "
                                f"({', '.join(self.classes)}); box dropped")
            else:
                boxes.append(obj.box)
                classes.append(ids[obj.name])
        return np.asarray(boxes, np.float64).reshape(-1, 4), classes, dontcare, problems

    def _split(self) -> dict:
        train = self._pairs("train_image_folder", "train_label_folder")
        if self.userdata.get("val_image_folder") or self.userdata.get("val_label_folder"):
            return {"train": train, "val": self._pairs("val_image_folder", "val_label_folder")}
        shuffled = list(train)
        random.Random(self.seed).shuffle(shuffled)
        n_val = len(shuffled) * self.val_pct // 100
        return {"train": sorted(shuffled[n_val:]), "val": sorted(shuffled[:n_val])}

    def _pairs(self, image_option, label_option) -> list:
        image_dir, label_dir = (self._folder(o) for o in (image_option, label_option))
        images = {p.stem: p for p in sorted(image_dir.iterdir())
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
        labels = {p.stem: p for p in sorted(label_dir.iterdir()) if p.is_file() and p.suffix.lower() == ".txt"}
        for stem in sorted(labels.keys() - images.keys()):
            self.problems.append((str(labels[stem]), f"no image {stem}.* in {image_dir}; label file not used"))
        return [(str(path), str(labels[stem]) if stem in labels else None) for stem, path in images.items()]

    def _folder(self, option) -> Path:
        raw = str(self.userdata.get(option) or "").strip()
        if not raw:
            raise ValueError(f"{option} is empty: give the validation images and labels folders together, "
                             "or neither.")
        if problem := server_paths.problem(raw):
            raise ValueError(f"{option}: {problem}")
        return Path(raw).expanduser()


def parse_classes(text) -> tuple[str, ...]:
    """The class list from the form: comma-separated names, lower-cased; blank: the KITTI classes."""
    names = [n.strip().lower() for n in str(text or "").split(",") if n.strip()]
    if not names:
        return kitti.KITTI_CLASSES
    if kitti.DONTCARE in names:
        raise ValueError("custom_classes: dontcare is not a class (its boxes are left out of training).")
    if len(set(names)) != len(names):
        raise ValueError(f"custom_classes: a class is listed twice in {', '.join(names)}.")
    return tuple(names)


def _short(path) -> str:
    """A label file as problems name it: its folder's name and its own."""
    path = Path(path)
    return f"{path.parent.name}/{path.name}"
