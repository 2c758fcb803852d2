"""The check every export gets as it is made: load the written model again and
compare its softmax probabilities on sample images with the source model's
(a detection model's raw output maps, which no softmax summarises).

The samples are a few images of the model's dataset (its val split, else
train), prepared as the network saw them, then seeded random pixels (all an
imported model without a dataset has). A difference above TOLERANCE raises
ExportMismatch naming the numbers; model_export then deletes what it made.
Imports TensorFlow when it reloads: run it in the CLI, never in the UI.
"""
import warnings
from pathlib import Path

import numpy as np

from . import lmdb_store
from .errors import DigitsError
from .image_records import read_record
from .inference import centre_crop
from .job_store import Job

TOLERANCE = {"model.keras": 1e-4, "saved_model": 1e-4, "tflite": 1e-3}  # max abs difference of what is compared
DATASET_SAMPLES, RANDOM_SAMPLES = 6, 2


class ExportMismatch(DigitsError):
    """A reloaded export predicts differently from its source model."""


def sample_inputs(job: Job, info: dict, shape: tuple) -> tuple[np.ndarray, list[str]]:
    """Images to compare predictions on: a few of the model's dataset (its val split, else train) as the
    network sees them, then seeded random pixels (all an imported model has). (N x shape float32, names)."""
    images, names = [], []
    dataset_dir = job.dir.parent / info["dataset"] if info.get("dataset") else None
    split = next((s for s in ("val", "train") if dataset_dir and (dataset_dir / s / "data.mdb").exists()), None)
    if split:
        count = lmdb_store.count(dataset_dir / split)
        indices = np.unique(np.linspace(0, count - 1, min(count, DATASET_SAMPLES)).astype(int))
        for index, record in zip(indices, lmdb_store.read_indices(dataset_dir / split, indices)):
            pixels = centre_crop(read_record(record)[0], info.get("crop"))
            if pixels.shape == shape:
                images.append(pixels.astype(np.float32))
                names.append(f"{split} record {index}")
    rng = np.random.default_rng(0)
    for _ in range(RANDOM_SAMPLES):
        images.append(rng.uniform(0, 255, shape).astype(np.float32))
        names.append("random pixels")
    return np.stack(images), names


def softmax(logits) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def comparable(outputs, raw: bool = False) -> np.ndarray:
    """What an export check compares: softmax probabilities, or the outputs themselves when `raw`."""
    return np.asarray(outputs, np.float64) if raw else softmax(outputs)


class Checker:
    """Compares a reloaded export's outputs on the samples with the source model's probabilities
    (with its raw outputs when `raw`: `expected` is then comparable(outputs, raw=True))."""

    def __init__(self, expected: np.ndarray, samples: np.ndarray, sources: list[str], raw: bool = False):
        self.expected, self.samples, self.sources, self.raw = expected, samples, sources, raw
        self.checked: dict[str, float] = {}

    def check(self, what: str, predict, path: Path) -> None:
        """Raise ExportMismatch, with the numbers, unless predict(path, samples) matches within TOLERANCE[what]."""
        got = comparable(predict(path, self.samples), self.raw)
        if got.shape != self.expected.shape:
            raise ExportMismatch(f"The exported {what} outputs shape {got.shape[1:]} where the source model "
                                 f"outputs {self.expected.shape[1:]}; nothing was written.")
        diffs = np.abs(got - self.expected).reshape(len(got), -1).max(axis=1)
        worst, tolerance = int(diffs.argmax()), TOLERANCE[what]
        if not diffs[worst] <= tolerance:  # NaN fails too
            raise ExportMismatch(
                f"The exported {what} does not predict like the source model: its "
                f"{'raw outputs' if self.raw else 'softmax probabilities'} differ by "
                f"up to {diffs[worst]:.3g} (tolerance {tolerance:g}) on sample {worst + 1} of {len(got)} "
                f"({self.sources[worst]}), where the source gives {_row(self.expected[worst])} and the export "
                f"{_row(got[worst])}. Nothing was written; report this with the model's network.")
        self.checked[what] = float(diffs.max())


def _row(probabilities: np.ndarray) -> str:
    return np.array2string(probabilities.ravel()[:6], precision=5, separator=", ")


def full_precision() -> None:
    """Compare at float32: TF32 matmuls (TensorFlow's default on Ampere and later GPUs) differ from the
    CPU-run TFLite file by more than its tolerance."""
    import tensorflow as tf
    tf.config.experimental.enable_tensor_float_32_execution(False)


def outputs(model, samples: np.ndarray) -> np.ndarray:
    """The model's outputs on the samples (a direct call: predict() would trace a function per model loaded)."""
    import keras
    return keras.ops.convert_to_numpy(model(samples, training=False))


def predict_keras(path: Path, samples: np.ndarray) -> np.ndarray:
    import keras
    return outputs(keras.models.load_model(path, compile=False), samples)


def predict_savedmodel(path: Path, samples: np.ndarray) -> np.ndarray:
    import tensorflow as tf
    serve = tf.saved_model.load(str(path)).signatures["serving_default"]
    (name,) = serve.structured_input_signature[1]
    return next(iter(serve(**{name: tf.constant(samples)}).values())).numpy()


def predict_tflite(path: Path, samples: np.ndarray) -> np.ndarray:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        interpreter = Interpreter(model_path=str(path))
    first, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    interpreter.resize_tensor_input(first["index"], list(samples.shape))
    interpreter.allocate_tensors()
    interpreter.set_tensor(first["index"], samples)
    interpreter.invoke()
    return interpreter.get_tensor(out["index"])


