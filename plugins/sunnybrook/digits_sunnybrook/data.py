"""The Sunnybrook data plugin: left-ventricle segmentation datasets from a
folder of DICOM images and a folder of contour files.

DIGITS calls, in its worker: `DataIngestion(**form values)`, then
`itemize_entries(stage)` for "train", "val" and "test", then `encode_entry`
for each entry in pool processes. Each entry is (DICOM path, contour path);
it becomes an HxWx1 uint8 image and an HxWx1 uint8 mask (0 background,
1 left ventricle). Reading DICOM is `dicom_image`'s job, contours `contours`'.
"""
import random
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from digits_engine.fields import Field
from digits_engine.plugins.interfaces import STAGES, DataPlugin

from .contours import find_contour_files, match_contours, polygon_mask, read_polygon
from .dicom_image import find_dicom_files, image_size, read_pixels, to_uint8

MIXED_SIZES = ("resize", "reject")


class DataIngestion(DataPlugin):
    """Sunnybrook LV segmentation: DICOM images + one polygon contour file per labelled image.

    After `itemize_entries`, `problems` lists the contour files that were not
    used, as (path, reason): a contour with no image, or with several; and
    `ignored` the Sunnybrook contours of other structures (outer wall,
    papillary muscles), which are not the left ventricle.
    """

    task = "segmentation"

    def __init__(self, is_inference_db: bool = False, **options):
        super().__init__(is_inference_db, **options)
        self.val_pct = self._int_option("val_pct", 10, 0, 100)
        self.size = self._int_option("size", 64, 0, None)
        mixed = str(options.get("mixed_sizes") or "resize").strip().lower()
        if mixed not in MIXED_SIZES:
            raise ValueError(f"mixed_sizes must be one of {', '.join(MIXED_SIZES)}; got {mixed!r}.")
        self.mixed_sizes = self.userdata["mixed_sizes"] = mixed
        seed = self._int_option("seed", None, None, None)
        if seed is None and not is_inference_db:  # stored with the dataset: its split can be redone
            seed = random.SystemRandom().randrange(2**31)
        self.seed = self.userdata["seed"] = seed
        reference = options.get("reference_size")  # set by itemize_entries when size is 0
        self.reference_size = tuple(int(v) for v in reference) if reference else None
        self.problems: list[tuple[str, str]] = []
        self.ignored: list[tuple[str, str]] = []
        self._pairs = None

    @staticmethod
    def get_id():
        return "image-sunnybrook"

    @staticmethod
    def get_title():
        return "Sunnybrook LV segmentation (DICOM)"

    @staticmethod
    def get_category():
        return "Images"

    @staticmethod
    def dataset_fields():
        return [
            Field("image_folder", "DICOM folder", kind="path", required=True,
                  help="A folder of DICOM images (*.dcm), searched recursively."),
            Field("contour_folder", "Contour folder", kind="path", required=True,
                  help="Contour text files, one polygon per file, one \"x y\" pixel coordinate pair a line. "
                       "IM-0001-0048-icontour-manual.txt (the Sunnybrook name) or IM-0001-0048.txt "
                       "outlines the left ventricle in IM-0001-0048.dcm. Searched recursively."),
            Field("val_pct", "Validation images (%)", kind="int", default=10, minimum=0, maximum=100,
                  help="The share of the labelled images kept for validation."),
            Field("size", "Image size (pixels)", kind="int", default=64, minimum=0, maximum=4096,
                  help="Images and masks are resized to size x size. 0 keeps the images' own size."),
            Field("mixed_sizes", "Images of another size", kind="choice", default="resize",
                  choices=MIXED_SIZES, advanced=True,
                  choice_labels={"resize": "Resize them to the most common size",
                                 "reject": "Leave them out, with the reason"},
                  help="Used only when the image size is 0: a dataset needs images of one size."),
            Field("seed", "Random seed", kind="int", advanced=True,
                  help="Seeds the train/validation split; empty picks one and stores it with the dataset."),
        ]

    @staticmethod
    def inference_fields():
        return [Field("dicom_file", "DICOM file", kind="path", required=True,
                      help="A DICOM image to segment: a path on the server, or upload one.")]

    def class_labels(self):
        return ["background", "left ventricle"]

    def itemize_entries(self, stage):
        """(DICOM path, contour path) pairs of `stage`; for an inference db, test = [(dicom_file, None)]."""
        if stage not in STAGES:
            raise ValueError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}.")
        if self.is_inference_db:
            return [(self._inference_file(), None)] if stage == "test" else []
        if stage == "test":
            return []
        pairs = self._find_pairs()
        if self.size == 0 and self.reference_size is None:
            self._find_reference_size()
        shuffled = list(pairs)
        random.Random(self.seed).shuffle(shuffled)
        n_val = len(shuffled) * self.val_pct // 100
        return sorted(shuffled[n_val:] if stage == "train" else shuffled[:n_val])

    def encode_entry(self, entry):
        """(HxWx1 uint8 image, HxWx1 uint8 mask of 0/1), or (image, None) for an entry without contour."""
        dicom, contour = entry
        image = to_uint8(read_pixels(dicom))
        height, width = image.shape
        target = self._target_size(height, width, dicom)  # an image of another size may be rejected
        mask = None
        if contour is not None:
            mask = polygon_mask(read_polygon(contour), width, height, contour)
        if target != (height, width):
            size = (target[1], target[0])  # PIL: (width, height)
            image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR))
            if mask is not None:
                mask = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
        return image[..., None], (None if mask is None else mask[..., None])

    # -- helpers --------------------------------------------------------------------------------------

    def _int_option(self, name, default, low, high):
        value = self.userdata.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            value = default
        else:
            try:
                value = int(str(value).strip())
            except ValueError:
                raise ValueError(f"{name} must be a whole number; got {value!r}.") from None
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
                raise ValueError(f"{name} must be {bounds}; got {value}.")
        setattr(self, name, value)
        if value is not None:
            self.userdata[name] = value
        return value

    def _folder(self, name, label) -> Path:
        value = getattr(self, name, None)
        if value is None or not str(value).strip():
            raise ValueError(f"{label} is required: choose the folder ({name}).")
        folder = Path(str(value).strip()).expanduser()
        if not folder.exists():
            raise ValueError(f"{label} {folder} does not exist: check the path ({name}).")
        if not folder.is_dir():
            raise ValueError(f"{label} {folder} is a file, not a folder: choose the folder that holds it ({name}).")
        return folder

    def _find_pairs(self):
        """All (DICOM path, contour path) pairs, found once; fills `problems` and `ignored`."""
        if self._pairs is not None:
            return self._pairs
        image_root = self._folder("image_folder", "DICOM folder")
        contour_root = self._folder("contour_folder", "Contour folder")
        images = find_dicom_files(image_root)
        if not images:
            raise ValueError(f"No DICOM files (*.dcm) in {image_root} or its subfolders: "
                             "choose the folder that holds the images (image_folder).")
        contours, others = find_contour_files(contour_root)
        self.ignored = [(str(p), "a Sunnybrook contour of another structure (outer wall or papillary "
                                 "muscle): only inner contours (-icontour-manual) outline the left ventricle")
                        for p in others]
        if not contours:
            raise ValueError(f"No contour files (*.txt) in {contour_root} or its subfolders: "
                             "choose the folder that holds them (contour_folder).")
        pairs, self.problems = match_contours(contours, contour_root, images, image_root)
        if not pairs:
            first, why = self.problems[0]
            raise ValueError(
                f"None of the {len(contours)} contour files in {contour_root} belongs to one of the "
                f"{len(images)} DICOM images in {image_root}. A contour IM-0001-0048-icontour-manual.txt "
                f"or IM-0001-0048.txt belongs to the image IM-0001-0048.dcm. First one: {first}: {why}")
        self._pairs = pairs
        return pairs

    def _find_reference_size(self):
        """The most common (height, width) of the labelled images, stored in userdata."""
        sizes = Counter(s for s in (image_size(dicom) for dicom, _ in self._find_pairs()) if s)
        if sizes:
            self.reference_size = sizes.most_common(1)[0][0]
            self.userdata["reference_size"] = list(self.reference_size)
        return self.reference_size

    def _target_size(self, height, width, dicom):
        if self.size > 0:
            return (self.size, self.size)
        reference = self.reference_size
        if reference is None and not self.is_inference_db:
            reference = self._find_reference_size()  # made from the form alone: scan once per process
        elif reference is None and getattr(self, "image_folder", None):
            try:  # inference with the dataset's form but not its reference size: the dataset's folder tells
                reference = self._find_reference_size()
            except ValueError:  # the dataset's folders are gone: keep the image's size
                self.reference_size = reference = ()
        if not reference or tuple(reference) == (height, width):
            return (height, width)
        if self.is_inference_db or self.mixed_sizes == "resize":
            return tuple(reference)
        rh, rw = reference
        raise ValueError(f"DICOM file {dicom} is {width}x{height} but most images are {rw}x{rh}: "
                         "set an image size, or choose \"resize\" for images of another size.")

    def _inference_file(self) -> str:
        value = getattr(self, "dicom_file", None)
        if value is None or not str(value).strip():
            raise ValueError("Choose a DICOM file to segment (dicom_file).")
        path = Path(str(value).strip()).expanduser()
        if not path.is_file():
            raise ValueError(f"DICOM file {path} does not exist: check the path, or upload the file again.")
        return str(path)
