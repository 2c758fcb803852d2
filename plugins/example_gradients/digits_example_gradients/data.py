"""Synthetic gradient images whose direction is the class: the smallest useful
data plugin (in the spirit of DIGITS' imageGradients plugin, as classification)."""
import numpy as np

from digits_engine.fields import Field
from digits_engine.plugins.interfaces import STAGES, DataPlugin  # STAGES: "train", "val", "test"

CLASSES = ("left-to-right", "top-to-bottom", "diagonal")
BLOCK = 1_000_000_000  # entry id = stage number * BLOCK + index: ids never repeat across stages


class DataIngestion(DataPlugin):
    # `task` stays "classification" (the default): encode_entry returns a class id.

    def __init__(self, is_inference_db=False, **options):
        # The app and the CLI pass every field, typed; filling the defaults also lets
        # a test or a notebook write DataIngestion(size=16).
        defaults = {f.name: f.default for f in self.dataset_fields()}
        super().__init__(is_inference_db, **{**defaults, **options})

    @staticmethod
    def get_id():
        return "image-gradients"

    @staticmethod
    def get_title():
        return "Gradients (example)"

    @staticmethod
    def get_category():
        return "Examples"

    @staticmethod
    def dataset_fields():
        return [
            Field("train_count", "Training images", kind="int", default=300, minimum=1, maximum=BLOCK - 1),
            Field("val_count", "Validation images", kind="int", default=60, minimum=0, maximum=BLOCK - 1),
            Field("size", "Image size (pixels)", kind="int", default=32, minimum=4, maximum=512),
            Field("noise", "Noise", kind="float", default=0.05, minimum=0.0, maximum=1.0, advanced=True,
                  help="Standard deviation of the Gaussian noise added to each pixel (1 = full scale)."),
            Field("seed", "Random seed", kind="int", default=0, minimum=0, advanced=True),
        ]

    def class_labels(self):
        return list(CLASSES)

    def itemize_entries(self, stage):
        # Entries travel to the encoding processes: small picklable ids are best.
        count = {"train": self.train_count, "val": self.val_count}.get(stage, 0)
        return [STAGES.index(stage) * BLOCK + i for i in range(count)]

    def encode_entry(self, entry):
        stage, index = divmod(entry, BLOCK)
        # Seeded by (seed, stage, index) alone: the same sample whichever process encodes it.
        rng = np.random.default_rng([self.seed, stage, index])
        label = int(rng.integers(len(CLASSES)))
        ramp = np.linspace(0.0, 1.0, self.size)
        if CLASSES[label] == "left-to-right":
            image = np.tile(ramp, (self.size, 1))
        elif CLASSES[label] == "top-to-bottom":
            image = np.tile(ramp[:, None], (1, self.size))
        else:
            image = (ramp[:, None] + ramp[None, :]) / 2
        if rng.random() < 0.5:  # either way along its direction: the mean brightness tells nothing
            image = 1.0 - image
        image = image + rng.normal(0.0, self.noise, image.shape)
        pixels = np.clip(image * 255, 0, 255).astype(np.uint8)
        return pixels[:, :, None], label  # HxWx1 uint8 (grayscale), class id
