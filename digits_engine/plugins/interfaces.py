"""The two plugin contracts, with DIGITS' method names so that its plugins
port easily (DIGITS: digits/extensions/data/interface.py, view/interface.py).

A data plugin turns some source into dataset samples:

    class DataIngestion(DataPlugin):
        @staticmethod
        def get_id(): return "image-sunnybrook"
        @staticmethod
        def get_title(): return "Sunnybrook LV segmentation"
        @staticmethod
        def dataset_fields(): return [Field("image_folder", "DICOM folder", kind="path", required=True)]
        def itemize_entries(self, stage): return [...]        # ids of the samples of "train", "val" or "test"
        def encode_entry(self, entry): return image, label      # HxWxC uint8, and an int or an HxWx1 mask

A view plugin shows one inference result in the app:

    class Visualization(ViewPlugin):
        def process_data(self, input_id, input_data, output_data, ground_truth=None): return {...}
        def render(self, data, st): st.image(...)

Field specs (digits_engine.fields.Field) describe forms once: the app renders
them as widgets, the CLI takes them as `--option name=value`.
"""
from abc import ABC, abstractmethod

from ..fields import Field

STAGES = ("train", "val", "test")
TASKS = ("classification", "segmentation", "detection")


class Plugin(ABC):
    """What every plugin has: a stable id and a title for people."""

    @staticmethod
    @abstractmethod
    def get_id() -> str:
        """A unique, stable id, e.g. "image-sunnybrook"."""

    @staticmethod
    @abstractmethod
    def get_title() -> str:
        """What the pages call it."""


class DataPlugin(Plugin):
    """A source of dataset samples. Instances are made in the worker and in
    each encoding process, from the form's values: keep state in `self.userdata`."""

    task = "classification"  # or "segmentation": the label is then an HxWx1 uint8 mask of class ids

    def __init__(self, is_inference_db: bool = False, **options):
        self.is_inference_db = is_inference_db
        self.userdata = dict(options)
        for name, value in options.items():
            setattr(self, name, value)

    @staticmethod
    def get_category() -> str:
        """The New dataset page groups plugins by category."""
        return "Images"

    @staticmethod
    @abstractmethod
    def dataset_fields() -> list[Field]:
        """The dataset form."""

    @staticmethod
    def inference_fields() -> list[Field] | None:
        """The form for data to run a trained model on, or None when the plugin offers none."""
        return None

    @staticmethod
    def demo_options() -> dict:
        """Values the dataset form starts with (a demo set on this server), by field name; {} for none."""
        return {}

    def get_user_data(self) -> dict:
        """What is stored with the job (must be JSON)."""
        return self.userdata

    def class_labels(self) -> list[str]:
        """Names of the classes, index = class id (label value or mask pixel)."""
        return []

    @abstractmethod
    def itemize_entries(self, stage: str) -> list:
        """The entries (any picklable ids, e.g. file paths) of `stage`: "train", "val" or "test";
        for an inference db, "test" holds the entries to infer on. Called once, in the worker."""

    @abstractmethod
    def encode_entry(self, entry):
        """(HxWxC uint8 array, label) for one entry; a label is an int (classification) or an
        HxWx1 uint8 array of class ids (segmentation). Raise ValueError with a message for a
        person to skip an entry; it is listed with that reason. Runs in pool processes."""


class ViewPlugin(Plugin):
    """Shows one inference result. `render` gets the streamlit module: plugins never import the app."""

    def __init__(self, **config):
        self.config = dict(config)

    @staticmethod
    def config_fields() -> list[Field]:
        """View options, rendered above the results."""
        return []

    @staticmethod
    def tasks() -> tuple[str, ...]:
        """The model tasks this view can show."""
        return TASKS

    @abstractmethod
    def process_data(self, input_id, input_data, output_data, ground_truth=None):
        """Turn one input (HxWxC uint8) and the model's output for it into what `render` draws.
        Pure computation: no streamlit here, so it can be tested and cached."""

    @abstractmethod
    def render(self, data, st) -> None:
        """Draw `data` (from process_data) with the streamlit module `st`."""
