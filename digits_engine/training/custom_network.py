"""A custom network: Python code from the model form that defines
`build_model(input_shape, num_classes)` returning a keras.Model.

The code runs only here, in the job's worker (never in the UI process), in a
fresh namespace. The user's model gets the job's preprocessed pixels of the
dataset's shape. Whatever goes wrong becomes a DigitsError that names the line
of the code, shown on the model page.
"""
import traceback
from typing import Callable

import keras

from .. import config
from ..errors import DigitsError

FILENAME = "<custom network>"  # how the code's frames are named in tracebacks


def refuse_if_switched_off() -> None:
    if not config.allow_custom_code():
        raise DigitsError("Custom network code is switched off on this server (DIGITS_ALLOW_CUSTOM_CODE=0), "
                          "so this job's code was not run. Clone the model with a standard network, or ask the "
                          "admin to allow custom code.")


def _line_of(exc: BaseException) -> int | None:
    """The line of the custom code where `exc` was raised (its innermost frame in the code)."""
    lines = [frame.lineno for frame in traceback.extract_tb(exc.__traceback__) if frame.filename == FILENAME]
    return lines[-1] if lines else None


def _failure(what: str, exc: BaseException) -> DigitsError:
    line = _line_of(exc)
    where = f"Custom network, line {line}" if line else "Custom network"
    return DigitsError(f"{where}: {what}: {type(exc).__name__}: {exc}")


def load_builder(code: str) -> Callable:
    """Run the code and return its build_model function."""
    try:
        compiled = compile(code, FILENAME, "exec")
    except SyntaxError as exc:
        text = f": {exc.text.strip()}" if exc.text and exc.text.strip() else ""
        raise DigitsError(f"Custom network, line {exc.lineno}: {exc.msg}{text}") from None
    namespace = {"__name__": "custom_network"}
    try:
        exec(compiled, namespace)  # noqa: S102 - the point of a custom network; refused when switched off
    except Exception as exc:  # noqa: BLE001 - any error in the person's code is reported with its line
        raise _failure("the code failed while it was run", exc) from None
    builder = namespace.get("build_model")
    if not callable(builder):
        raise DigitsError("Custom network: the code defines no function build_model(input_shape, num_classes); "
                          "define it to return a keras.Model.")
    return builder


def expected_shape(task: str, image_shape, n_classes: int) -> tuple:
    if task == "segmentation":
        return (None, image_shape[0], image_shape[1], n_classes)
    return (None, n_classes)


def build(code: str, image_shape, n_classes: int, preprocess: Callable, task: str = "classification") -> keras.Model:
    """The job's model: inputs -> preprocess -> the custom model -> logits of the expected shape."""
    refuse_if_switched_off()
    builder = load_builder(code)
    shape = tuple(int(d) for d in image_shape)
    try:
        user_model = builder(shape, n_classes)
    except Exception as exc:  # noqa: BLE001
        raise _failure("build_model failed", exc) from None
    if not isinstance(user_model, keras.Model):
        raise DigitsError(f"Custom network: build_model returned an object of type {type(user_model).__name__}, not a keras.Model. "
                          "End it with e.g. `return keras.Model(inputs, outputs)`.")
    inputs = keras.Input(shape=shape, name="image")
    try:
        outputs = user_model(preprocess(inputs))
    except Exception as exc:  # noqa: BLE001
        raise _failure(f"the model does not take images of shape {shape}", exc) from None
    _check_output(outputs, expected_shape(task, shape, n_classes), task)
    return keras.Model(inputs, outputs, name="custom")


def _check_output(outputs, expected: tuple, task: str) -> None:
    if not hasattr(outputs, "shape"):
        raise DigitsError(f"Custom network: the model returns {type(outputs).__name__}, not one tensor of "
                          f"shape {expected}.")
    got = tuple(outputs.shape)
    if got != expected:
        what = ("per-pixel logits (batch, height, width, classes)" if task == "segmentation"
                else "one logit per class (batch, classes)")
        raise DigitsError(f"Custom network: the model's output shape is {got}; it must be {expected}: {what}. "
                          "Check the last layer's size.")
