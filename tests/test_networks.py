"""The standard networks, in process: each builds for small and full-size inputs, has a
"logits" output layer of the class count, trains a step, and scales its shape to the input;
the ImageNet input layer matches keras.applications' own preprocess_input."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import layers  # noqa: E402

from digits_engine import model_spec  # noqa: E402
from digits_engine.training import keras_applications, networks  # noqa: E402

pytestmark = pytest.mark.timeout(300)


def scale(inputs):
    return layers.Rescaling(1 / 255, name="scale")(inputs)


def train_a_step(model: keras.Model, shape) -> float:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (8, *shape)).astype("float32")
    y = rng.integers(0, 3, 8)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model.fit(x, y, batch_size=8, epochs=1, verbose=0).history["loss"][-1]


@pytest.mark.parametrize("name, shape", [("googlenet", (16, 16, 3)), ("googlenet", (28, 28, 1)),
                                         ("resnet18", (28, 28, 1)), ("resnet50", (16, 16, 1)),
                                         ("mobilenetv2", (32, 32, 3))])
def test_each_network_builds_and_trains_on_small_images(name, shape):
    model = networks.build(name, shape, 3, scale)
    assert model.output_shape == (None, 3)
    assert model.get_layer("logits").output is model.outputs[0]
    assert np.isfinite(train_a_step(model, shape))


def test_the_form_offers_every_standard_network_with_a_label():
    for name in model_spec.TASK_NETWORKS["classification"]:
        assert name in networks.NETWORKS and name in model_spec.NETWORK_LABELS
    assert model_spec.TASK_NETWORKS["classification"] == (
        "lenet", "alexnet", "googlenet", "resnet18", "resnet50", "mobilenetv2")


def inception_modules(model: keras.Model) -> list[str]:
    return [layer.name for layer in model.layers if layer.name.startswith("inception_")]


def test_googlenet_has_the_papers_shape_at_224_and_a_small_one_at_32():
    full = networks.build("googlenet", (224, 224, 3), 10, scale)
    assert inception_modules(full) == [f"inception_{m}" for m in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")]
    assert full.get_layer("inception_3a").output.shape[1:3] == (28, 28)  # the stem divides by 8
    assert full.get_layer("inception_5b").output.shape[1:] == (7, 7, 1024)
    small = networks.build("googlenet", (32, 32, 3), 10, scale)
    assert inception_modules(small) == ["inception_3a", "inception_4a", "inception_5a"]
    assert small.get_layer("inception_3a").output.shape[1:3] == (32, 32)  # no stem downsampling
    assert small.count_params() < full.count_params() / 3


def test_resnet18_has_eight_basic_blocks_and_a_stem_scaled_to_the_input():
    full = networks.build("resnet18", (224, 224, 3), 10, scale)
    small = networks.build("resnet18", (32, 32, 3), 10, scale)
    for model in (full, small):
        assert sum(isinstance(layer, layers.Add) for layer in model.layers) == 8
    def last_map(model):
        return [layer for layer in model.layers if isinstance(layer, layers.Add)][-1].output.shape[1:]
    assert last_map(full) == (7, 7, 512)  # the paper's 224 -> 7
    assert last_map(small) == (4, 4, 512)  # a 3x3 stride-1 stem, as CIFAR ResNets
    assert 11_000_000 < full.count_params() < 11_300_000


def test_keras_applications_upsample_small_inputs_to_32():
    model = networks.build("mobilenetv2", (16, 16, 1), 4, scale)
    assert model.get_layer("upsample").output.shape[1:] == (32, 32, 1)
    bigger = networks.build("mobilenetv2", (40, 40, 3), 4, scale)
    assert "upsample" not in [layer.name for layer in bigger.layers]


@pytest.mark.parametrize("network, reference", [
    ("resnet50", keras.applications.resnet50.preprocess_input),
    ("mobilenetv2", keras.applications.mobilenet_v2.preprocess_input)])
@pytest.mark.parametrize("channels", [3, 1])
def test_the_imagenet_input_layer_is_the_applications_preprocessing(network, reference, channels):
    pixels = np.random.default_rng(1).integers(0, 256, (2, 5, 5, channels)).astype("float32")
    inputs = keras.Input((5, 5, channels))
    layer = keras.Model(inputs, keras_applications.imagenet_preprocessor(network, channels)(inputs))
    expected = reference(np.repeat(pixels, 3 // channels, axis=-1))  # grayscale: tiled to three channels
    np.testing.assert_allclose(layer.predict(pixels, verbose=0), expected, atol=1e-5)
    assert not layer.get_layer("imagenet_input").trainable


def test_pretrained_weights_only_for_the_keras_applications():
    with pytest.raises(ValueError, match="only for resnet50, mobilenetv2"):
        networks.build("resnet18", (32, 32, 3), 3, scale, weights="imagenet")
