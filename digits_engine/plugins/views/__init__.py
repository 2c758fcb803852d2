"""The built-in views: the same `ViewPlugin` contract as third-party view
plugins, and registered the same way (entry points in group
`digits.plugins.view`, each pointing at a module's `Visualization` class):

    image-classification = "digits_engine.plugins.views.classification:Visualization"
    image-segmentation   = "digits_engine.plugins.views.segmentation:Visualization"
    all-raw-data         = "digits_engine.plugins.views.raw:Visualization"
    image-bounding-boxes = "digits_engine.plugins.views.boxes:Visualization"

This package holds the helpers they share. No streamlit here: `render` gets
the module as an argument.
"""
import numpy as np


def shape_text(shape) -> str:
    """(32, 32, 3) -> "32x32x3": how the messages write shapes."""
    return "x".join(str(n) for n in shape) if len(shape) else "a scalar"


def as_array(value, what: str) -> np.ndarray:
    """`value` as a numeric numpy array, or ValueError naming `what`."""
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"The {what} is not an array of numbers: {exc}") from None
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ValueError(f"The {what} must hold numbers; got values of type {array.dtype}.")
    return array


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Pixels for display: uint8 as is, booleans as 0/255, anything else stretched to 0..255."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    values = array.astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        return np.zeros(array.shape, np.uint8)
    low, high = values[finite].min(), values[finite].max()
    values = np.where(finite, values, low)
    if high == low:
        return np.zeros(array.shape, np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def as_rgb_image(input_data, what: str = "input image") -> np.ndarray:
    """An HxW, HxWx1, HxWx3 or HxWx4 image as HxWx3 uint8 (gray repeated, alpha dropped)."""
    image = as_array(input_data, what)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or 0 in image.shape[:2]:
        raise ValueError(f"The {what} has shape {shape_text(image.shape)}; expected HxWxC with C = 1 "
                         "(grayscale) or 3 (RGB), e.g. 256x256x1.")
    image = to_uint8(image[:, :, :3])
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image)


def widget_key(view_id: str, name: str, input_id) -> str:
    """A widget key unique to one view, one widget and one input."""
    return f"{view_id}-{name}-{input_id}"
