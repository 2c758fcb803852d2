"""A previous network: fine-tune an earlier model job from one of its epoch snapshots.

Every weight is kept. When the new dataset has another number of classes, the
layer named "logits" is replaced by a fresh one of the same kind (Dense, or a
1x1 Conv2D for segmentation) with the new count, on the same input.
"""
import keras

from .. import snapshots
from ..errors import DigitsError
from ..job_store import Job, JobStore


def snapshot_of(previous: Job, epoch: int | None):
    """The snapshot of `epoch`, or of the last whole epoch when None."""
    found = dict(snapshots.list_snapshots(previous))
    if epoch is None and found:
        epoch = max(found)
    if epoch not in found:
        have = ", ".join(map(str, sorted(found))) or "none"
        raise DigitsError(f"Model {previous.name!r} ({previous.id}) has no snapshot of "
                          f"{'any epoch' if epoch is None else f'epoch {epoch}'} (epochs with one: {have}).")
    return epoch, found[epoch]


def _size(shape) -> str:
    return "x".join(map(str, shape))


def load_previous(store: JobStore, model_id: str, epoch: int | None, shape, n_classes: int) -> tuple[keras.Model, dict]:
    """(the previous model, ready for the new dataset, what it started from for model.json)."""
    previous = store.get(model_id)
    if previous.kind != "model":
        raise DigitsError(f"{previous.id} is a dataset; fine-tuning needs a model id.")
    epoch, path = snapshot_of(previous, epoch)
    print(f"fine-tuning {previous.id} from its epoch {epoch} snapshot", flush=True)
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - a snapshot that cannot be loaded: say which and why
        raise DigitsError(f"The snapshot {path.name} of model {previous.name!r} could not be loaded: {exc}") from exc
    trained_on = tuple(model.input_shape[1:])
    if trained_on != tuple(shape):
        raise DigitsError(f"Model {previous.name!r} takes {_size(trained_on)} inputs and this job's are {_size(shape)} "
                          "(height x width x channels, after any crop): pick a model trained at this size.")
    replaced = model.output_shape[-1] != n_classes
    if replaced:
        model = with_new_head(model, n_classes)
    return model, {"model": previous.id, "name": previous.name, "epoch": epoch, "snapshot": str(path),
                   "head_replaced": replaced}


def with_new_head(model: keras.Model, n_classes: int) -> keras.Model:
    """`model` with its "logits" layer (at the top, or inside a nested model such as a custom
    network's) replaced by a freshly initialised one of `n_classes` outputs; every other layer,
    weights included, is shared."""
    replaced, outputs_before = [], model.output_shape[-1]

    def fresh_head(layer):
        if layer.name != "logits":
            return layer
        config = layer.get_config()
        config["units" if "units" in config else "filters"] = n_classes
        replaced.append(layer.__class__.from_config(config))
        return replaced[-1]

    try:
        model = keras.models.clone_model(model, clone_function=fresh_head, recursive=True)
    except Exception as exc:  # noqa: BLE001 - a graph that cannot be rebuilt: say so, not where
        raise DigitsError(f"The previous network's head could not be replaced: {exc}") from exc
    if not replaced or model.output_shape[-1] != n_classes:
        what = "layers after its logits" if replaced else 'no layer named "logits"'
        raise DigitsError(f"The previous network has {outputs_before} outputs and {what} to give this "
                          f"dataset's {n_classes} classes. Fine-tune it on a dataset with the same number of "
                          'classes, or name the last layer of its network "logits".')
    return model
