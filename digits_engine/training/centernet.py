"""CenterNet (Objects as Points, Zhou et al. 2019), sized for a CPU: the
network, its loss, and the callback that measures val mAP after validations.

The model takes BxHxWxC pixels (0..255) and outputs one B x H/4 x W/4 x (K + 4)
tensor: K class-heatmap logits, then box width and height (output cells) and
the centre's sub-cell offset - what detection_decode reads. Training batches
carry the encoded targets (detection_boxes.encode_batch) under "heatmaps";
the loss is the penalty-reduced focal loss on the heatmaps plus L1 on size
(weight 0.1) and offset at the object centres, each normalised by the number
of objects. Its parts are logged as heatmap_loss, size_loss, offset_loss.
"""
import keras
import numpy as np
from keras import layers, ops

from ..detection_decode import DECODING, decode
from ..detection_metrics import DetectionAccumulator

STRIDE = DECODING["stride"]
HEATMAP_BIAS = -2.19  # sigmoid(-2.19) = 0.1: CenterNet's start, so the focal loss is not swamped at first
SIZE_WEIGHT = 0.1


def _conv(x, filters: int, stride: int = 1):
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization(momentum=0.9)(x)  # Keras' 0.99 lags far behind in short CPU runs
    return layers.Activation("relu")(x)


def centernet_body(inputs, n_classes: int):
    """Four conv stages (stride 2, 4, 8, 16), upsampled back to stride 4 with skip additions, three heads."""
    stride2 = _conv(_conv(inputs, 16, 2), 16)
    stride4 = _conv(_conv(stride2, 32, 2), 32)
    stride8 = _conv(_conv(stride4, 64, 2), 64)
    stride16 = _conv(_conv(stride8, 96, 2), 96)
    up8 = _conv(layers.Add()([layers.UpSampling2D(2)(_conv(stride16, 64)), stride8]), 64)
    up4 = _conv(layers.Add()([layers.UpSampling2D(2)(_conv(up8, 32)), stride4]), 64)

    def head(channels: int, name: str, bias: float = 0.0):
        x = layers.Conv2D(64, 3, padding="same", activation="relu")(up4)
        return layers.Conv2D(channels, 1, name=name, bias_initializer=keras.initializers.Constant(bias))(x)
    return layers.Concatenate(name="logits")([head(n_classes, "heatmap", HEATMAP_BIAS), head(2, "size"),
                                              head(2, "offset")])


def focal_loss(heat_true, heat_logits):
    """CenterNet's penalty-reduced focal loss (alpha 2, beta 4), summed over cells; positives are peaks (== 1)."""
    pred = ops.clip(ops.sigmoid(heat_logits), 1e-4, 1 - 1e-4)
    positive = ops.cast(heat_true >= 1.0, pred.dtype)
    pos = ops.log(pred) * (1 - pred) ** 2 * positive
    neg = ops.log(1 - pred) * pred ** 2 * (1 - heat_true) ** 4 * (1 - positive)
    return -(ops.sum(pos) + ops.sum(neg))


@keras.saving.register_keras_serializable(package="digits")
class CenterNet(keras.Model):
    """A functional model whose loss comes from the packed targets (see module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in ("heatmap_loss", "size_loss",
                                                                          "offset_loss")}

    @property
    def metrics(self):
        return [*super().metrics, *self.trackers.values()]

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        targets = y["heatmaps"]
        n_classes = ops.shape(y_pred)[-1] - 4
        mask = targets[..., -1:]
        n_objects = ops.maximum(ops.sum(mask), 1.0)
        parts = {
            "heatmap_loss": focal_loss(targets[..., :n_classes], y_pred[..., :n_classes]) / n_objects,
            "size_loss": ops.sum(ops.abs(y_pred[..., n_classes:n_classes + 2] - targets[..., n_classes:n_classes + 2])
                                 * mask) / n_objects,
            "offset_loss": ops.sum(ops.abs(y_pred[..., n_classes + 2:n_classes + 4]
                                           - targets[..., n_classes + 2:n_classes + 4]) * mask) / n_objects,
        }
        for name, value in parts.items():
            self.trackers[name].update_state(value)
        total = parts["heatmap_loss"] + SIZE_WEIGHT * parts["size_loss"] + parts["offset_loss"]
        return total + sum(self.losses)  # + any layer's regularisation losses (none in the standard network)


def build(image_shape, n_classes: int, preprocess) -> keras.Model:
    """The CenterNet for `image_shape` (H, W divisible by 4) and `n_classes` (no background class)."""
    if image_shape[0] % STRIDE or image_shape[1] % STRIDE:
        raise ValueError(f"CenterNet needs an image height and width divisible by {STRIDE}; this dataset's images "
                         f"are {image_shape[1]}x{image_shape[0]}. Rebuild the dataset at e.g. 64x64.")
    inputs = keras.Input(shape=tuple(image_shape), name="image")
    return CenterNet(inputs, centernet_body(preprocess(inputs), n_classes), name="centernet")


class ValidationMAP(keras.callbacks.Callback):
    """After each validation, the model run on the val split and decoded: val_mAP and val_AP_<class>
    added to the epoch logs, so a callback after this one (JobProgress) records them."""

    def __init__(self, val_ds, labels: list[str]):
        super().__init__()
        self.val_ds, self.labels = val_ds, labels

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or "val_loss" not in logs:
            return  # no validation this epoch
        result = evaluate_model(self.model, self.val_ds, len(self.labels))
        logs["val_mAP"] = result["mAP"] or 0.0
        for label, ap in zip(self.labels, result["AP"]):
            if ap is not None:
                logs[f"val_AP_{label}"] = ap


def evaluate_model(model: keras.Model, dataset, n_classes: int) -> dict:
    """detection_metrics' result for `model` on a detection tf.data split."""
    accumulator = DetectionAccumulator(n_classes)
    for images, truth in dataset:
        predictions = decode(np.asarray(model(images, training=False)), STRIDE, DECODING["max_detections"])
        boxes, classes = truth["boxes"].numpy(), truth["classes"].numpy()
        accumulator.add(predictions, [{"boxes": b[c >= 0], "classes": c[c >= 0]} for b, c in zip(boxes, classes)])
    return accumulator.result()
