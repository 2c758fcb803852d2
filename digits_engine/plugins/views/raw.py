"""Raw data view: the model output's shape, type, range and first values, for
any task (DIGITS' default view, "all-raw-data").

    Visualization().process_data("img-1", image, np.arange(6).reshape(2, 3))
    # {"shape": [2, 3], "dtype": "int64", "min": 0, "max": 5, "mean": 2.5, "values": [0, 1, 2, 3, 4, 5], ...}

An output that is a dict of named arrays (a model with several outputs) gives
{"outputs": {name: summary}}.
"""
from collections.abc import Mapping

import numpy as np

from ..interfaces import ViewPlugin

MAX_VALUES = 100


def _number(value):
    """A JSON-friendly Python number; None for NaN and infinities."""
    value = value.item() if hasattr(value, "item") else value
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def summary(output) -> dict:
    array = np.asarray(output)
    flat = array.reshape(-1)
    numeric = np.issubdtype(array.dtype, np.number) or array.dtype == bool
    result = {"shape": list(array.shape), "dtype": str(array.dtype), "min": None, "max": None, "mean": None}
    if numeric and array.size:
        values = flat.astype(np.float64) if array.dtype == bool else flat
        finite = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
        if finite.size:
            result.update(min=_number(finite.min()), max=_number(finite.max()), mean=float(finite.astype(np.float64).mean()))
        if finite.size != flat.size:
            result["non_finite"] = int(flat.size - finite.size)
    head = flat[:MAX_VALUES]
    result["values"] = [_number(v) for v in head] if numeric else [str(v) for v in head.tolist()]
    if flat.size > MAX_VALUES:
        result["values_shown"] = f"first {MAX_VALUES} of {flat.size}"
    return result


class Visualization(ViewPlugin):
    @staticmethod
    def get_id() -> str:
        return "all-raw-data"

    @staticmethod
    def get_title() -> str:
        return "Raw data"

    def process_data(self, input_id, input_data, output_data, ground_truth=None) -> dict:
        if output_data is None:
            raise ValueError("The model gave no output for this input (output_data is None).")
        if isinstance(output_data, Mapping):
            return {"outputs": {str(name): summary(value) for name, value in output_data.items()}}
        return summary(output_data)

    def render(self, data, st) -> None:
        outputs = data["outputs"] if "outputs" in data else {"output": data}
        for name, info in outputs.items():
            if len(outputs) > 1:
                st.markdown(f"**{name}**")
            shape = "x".join(map(str, info["shape"])) or "scalar"
            st.write(f"Shape {shape}, {info['dtype']}: min {info['min']}, max {info['max']}, mean {info['mean']}")
            st.json(info, expanded=1)
