"""What each layer of a network does with one image: DIGITS' "show visualizations
and statistics" (imports Keras only inside the functions that run a model).

`trace` runs a model eagerly layer by layer, inside nested models too (a
keras.applications body is one layer of the outer model), and returns every
layer's output. `layer_stats` turns that into one row per layer that has
weights or a 2-D/4-D output: name, type, output shape, parameter count,
statistics of the weights and of the activations, and a small picture of the
activations (up to 16 channels of a convolution as uint8 tiles, or the vector
of a dense layer). `pack` and `unpack` store the rows in an .npz file, so that
the UI, which never imports TensorFlow, can show them.

    rows = layer_stats(model, image)          # image: H x W x C, as the network sees it
    np.savez_compressed("details.npz", **pack(rows))
    rows = unpack(np.load("details.npz"))     # the same rows, in the UI process
"""
import json

import numpy as np

HISTOGRAM_BINS = 20
MAX_TILES = 16  # channels pictured per convolution
MAX_TILE_SIDE = 48  # larger activation maps are subsampled: the payload stays small
MAX_VECTOR = 1024  # dense activations kept per layer


def trace(model, images) -> list[tuple[str, object, object]]:
    """(name, layer, output) for every layer the model runs on the batch `images`, in order.

    Layers of nested models are named "inner_model/layer". The outputs are eager tensors, so a
    GradientTape around this call can differentiate the model's output with respect to any of them.
    Keras has no public API for the outputs of layers inside nested models: this walks Functional
    graphs with `_run_through_graph`, the runner keras.models.clone_model uses.
    """
    import keras

    records = []

    def call(layer, *args, prefix="", **kwargs):
        if isinstance(layer, keras.Sequential):
            outputs = args[0]
            for inner in layer.layers:
                outputs = call(inner, outputs, prefix=f"{prefix}{layer.name}/")
            return outputs
        if isinstance(layer, keras.Model) and hasattr(layer, "_nodes_by_depth"):  # a Functional model
            inner_prefix = f"{prefix}{layer.name}/" if layer is not model else ""
            outputs = layer._run_through_graph(
                args[0], call_fn=lambda op, *a, **k: call(op, *a, prefix=inner_prefix, **k))
            return outputs[0] if isinstance(outputs, (list, tuple)) and len(outputs) == 1 else outputs
        outputs = layer(*args, **kwargs)
        records.append((prefix + layer.name, layer, outputs))
        return outputs

    call(model, images)
    return records


def summary(values: np.ndarray) -> dict:
    """{"mean", "std", "min", "max", "histogram": {"counts", "low", "high"}} of the finite values
    (HISTOGRAM_BINS equal bins from low to high)."""
    finite = np.asarray(values, np.float64).ravel()
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return {"mean": None, "std": None, "min": None, "max": None, "histogram": None}
    low, high = float(finite.min()), float(finite.max())
    counts, _ = np.histogram(finite, bins=HISTOGRAM_BINS, range=(low, high) if high > low else (low - 0.5, low + 0.5))
    return {"mean": float(finite.mean()), "std": float(finite.std()), "min": low, "max": high,
            "histogram": {"counts": counts.tolist(), "low": low if high > low else low - 0.5,
                          "high": high if high > low else low + 0.5}}


def tiles(activation: np.ndarray) -> np.ndarray:
    """Up to MAX_TILES channels of an H x W x C activation as uint8 tiles (n x h x w) on one shared
    scale (a dim tile is a weakly activated channel), subsampled to at most MAX_TILE_SIDE a side."""
    step = -(-max(activation.shape[:2]) // MAX_TILE_SIDE)
    chosen = np.moveaxis(activation[::step, ::step, :MAX_TILES], -1, 0).astype(np.float64)
    chosen = np.nan_to_num(chosen, nan=0.0, posinf=0.0, neginf=0.0)
    low, high = chosen.min(), chosen.max()
    scaled = (chosen - low) / (high - low) if high > low else np.zeros_like(chosen)
    return np.round(scaled * 255).astype(np.uint8)


def _row(name: str, layer, output) -> dict | None:
    if isinstance(output, (list, tuple, dict)):
        return None  # a layer with several outputs: nothing to picture
    activation = np.asarray(output)[0]
    if not layer.weights and activation.ndim not in (1, 3):
        return None
    row = {"name": name, "type": type(layer).__name__, "output_shape": list(activation.shape),
           "parameters": int(sum(np.prod(w.shape) for w in layer.weights)), "weights": None,
           "activations": summary(activation)}
    if layer.weights:  # the first weight (the kernel of a convolution or dense layer), as DIGITS showed
        kernel = layer.weights[0]
        row["weights"] = {"name": kernel.name, "shape": list(kernel.shape), **summary(np.asarray(kernel))}
    if activation.ndim == 3:
        row["tiles"] = tiles(activation)
        row["channels_shown"] = f"{row['tiles'].shape[0]} of {activation.shape[-1]}"
    elif activation.ndim == 1:
        row["vector"] = activation[:MAX_VECTOR].astype(np.float32)
    return row


def layer_stats(model, image: np.ndarray) -> list[dict]:
    """One row per layer with weights or a 2-D/4-D output, for one H x W x C image as the network sees it.

    Each row: "name", "type" (the Keras class), "output_shape" (without the batch), "parameters",
    "weights" (None, or {"name", "shape"} and the summary() of the layer's first weight),
    "activations" (the summary() of its output on the image), and "tiles" (n x h x w uint8, with
    "channels_shown") for a 4-D output or "vector" (float32) for a 2-D one.
    """
    batch = np.asarray(image, np.float32)[None]
    rows = [_row(name, layer, output) for name, layer, output in trace(model, batch)]
    return [row for row in rows if row is not None]


def pack(rows: list[dict]) -> dict[str, np.ndarray]:
    """Arrays for np.savez: "layers" (the rows as JSON text), "tiles_<i>" and "vector_<i>" for row i."""
    arrays, plain = {}, []
    for i, row in enumerate(rows):
        for key in ("tiles", "vector"):
            if key in row:
                arrays[f"{key}_{i}"] = row[key]
        plain.append({k: v for k, v in row.items() if k not in ("tiles", "vector")})
    return {"layers": np.array(json.dumps(plain)), **arrays}


def unpack(arrays) -> list[dict]:
    """The rows pack() stored, from np.load(path) (or any mapping of its arrays)."""
    rows = json.loads(str(arrays["layers"]))
    for i, row in enumerate(rows):
        for key in ("tiles", "vector"):
            if f"{key}_{i}" in arrays:
                row[key] = np.asarray(arrays[f"{key}_{i}"])
    return rows
