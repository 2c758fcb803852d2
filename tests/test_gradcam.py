"""Grad-CAM, the layer-by-layer statistics and `digits classify --details`.

Grad-CAM is checked where the answer is known: 32x32 noise images that hold a
bright square at a random place (class "square") or none (class "blank"). A
small conv net learns the task in-process in a few seconds; its heatmaps must
peak inside the square. The network's convolutions sit in a nested model, as
keras.applications bodies do, so the layer tracing inside nested models is
exercised too.
"""
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers

from digits_engine import cli, gradcam, layer_stats
from digits_engine.job_store import JobStore

SIZE, SIDE = 32, 8


def square_images(count: int, seed: int):
    """(images N x 32 x 32 x 1, labels 1 = square / 0 = blank, (top, left) of each image's square)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 90, (count, SIZE, SIZE, 1)).astype(np.float32)
    labels = rng.integers(0, 2, count)
    corners = rng.integers(0, SIZE - SIDE + 1, (count, 2))
    for image, label, (top, left) in zip(images, labels, corners):
        if label:
            image[top:top + SIDE, left:left + SIDE] = rng.integers(200, 256)
    return images, labels, corners


def square_finder() -> keras.Model:
    """uint8-range pixels -> Rescaling -> nested "features" model (two convolutions, pooling) -> logits."""
    inner_input = keras.Input((SIZE, SIZE, 1))
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="first_conv")(inner_input)
    x = layers.MaxPooling2D(2, name="pool")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="last_conv")(x)
    features = keras.Model(inner_input, layers.GlobalMaxPooling2D(name="global_pool")(x), name="features")
    inputs = keras.Input((SIZE, SIZE, 1), name="image")
    outputs = layers.Dense(2, name="logits")(features(layers.Rescaling(1 / 255.0, name="normalize")(inputs)))
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def trained_finder() -> keras.Model:
    keras.utils.set_random_seed(0)
    images, labels, _ = square_images(600, seed=0)
    model = square_finder()
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    history = model.fit(images, labels, epochs=5, batch_size=32, verbose=0)
    assert history.history["accuracy"][-1] > 0.95  # the task is learnt, so the heatmaps mean something
    return model


def test_heatmap_has_the_input_size_and_lies_in_0_1():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((20, 24, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D(2)(x)
    model = keras.Model(inputs, layers.Dense(3)(layers.Flatten()(x)))
    images = np.random.default_rng(0).uniform(0, 255, (3, 20, 24, 3)).astype(np.float32)
    batch = gradcam.gradcam(model, images)
    assert batch.shape == (3, 20, 24) and batch.dtype == np.float32
    assert batch.min() >= 0 and batch.max() <= 1
    single = gradcam.gradcam(model, images[0], class_index=2)
    assert single.shape == (20, 24)
    assert np.allclose(single, gradcam.gradcam(model, images[:1], class_index=2)[0])


def test_a_network_without_convolutions_is_refused_with_a_reason():
    inputs = keras.Input((8,))
    model = keras.Model(inputs, layers.Dense(2)(layers.Dense(4)(inputs)))
    with pytest.raises(Exception, match="convolution-like"):
        gradcam.gradcam(model, np.zeros((1, 8), np.float32))


def test_heatmap_peaks_on_the_square(trained_finder):
    images, labels, corners = square_images(40, seed=1)
    with_square = np.flatnonzero(labels == 1)
    heatmaps = gradcam.gradcam(trained_finder, images[with_square])  # the top class: "square"
    hits, shares = 0, []
    for heatmap, (top, left) in zip(heatmaps, corners[with_square]):
        row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        hits += top - 1 <= row <= top + SIDE and left - 1 <= col <= left + SIDE  # a pixel of slack: upsampling
        shares.append(heatmap[top:top + SIDE, left:left + SIDE].sum() / heatmap.sum())
    assert hits >= 0.8 * len(with_square), (hits, len(with_square))
    assert np.mean(shares) > 0.5  # the square is 1/16 of the image but holds most of the heat


def test_the_explained_layer_is_the_last_convolution_inside_the_nested_model(trained_finder):
    records = layer_stats.trace(trained_finder, np.zeros((1, SIZE, SIZE, 1), np.float32))
    names = [name for name, _, _ in records]
    assert names == ["normalize", "features/first_conv", "features/pool", "features/last_conv",
                     "features/global_pool", "logits"]
    assert gradcam.target_layer(records)[0] == "features/last_conv"
    assert np.allclose(records[-1][2], trained_finder(np.zeros((1, SIZE, SIZE, 1), np.float32)), atol=1e-6)


def test_overlay_colours_the_hot_region_and_needs_no_tensorflow():
    image = np.full((10, 12), 100, np.uint8)
    heatmap = np.zeros((5, 6), np.float32)
    heatmap[:2, :2] = 1.0  # the top-left corner is hot; resized to the image's 10 x 12
    picture = gradcam.overlay(image, heatmap)
    assert picture.shape == (10, 12, 3) and picture.dtype == np.uint8
    hot, cold = picture[0, 0].astype(int), picture[-1, -1].astype(int)
    assert hot[0] > hot[2] and cold[2] > cold[0]  # red where hot, blue where cold
    assert gradcam.overlay(np.zeros((10, 12, 1), np.uint8), np.ones((10, 12))).shape == (10, 12, 3)
    code = "import sys, digits_engine.gradcam, digits_engine.layer_stats; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_layer_stats_of_a_tiny_model_with_known_weights():
    inputs = keras.Input((4, 4, 1), name="image")
    conv = layers.Conv2D(2, 1, name="conv")
    dense = layers.Dense(3, name="dense")
    model = keras.Model(inputs, dense(layers.Flatten(name="flatten")(conv(inputs))))
    conv.set_weights([np.array([1.0, -2.0], np.float32).reshape(1, 1, 1, 2), np.array([0.5, 0.0], np.float32)])
    dense_kernel = np.arange(96, dtype=np.float32).reshape(32, 3) / 96
    dense.set_weights([dense_kernel, np.zeros(3, np.float32)])
    image = np.arange(16, dtype=np.float32).reshape(4, 4, 1)

    rows = {row["name"]: row for row in layer_stats.layer_stats(model, image)}
    assert list(rows) == ["conv", "flatten", "dense"]
    conv_row = rows["conv"]
    assert conv_row["type"] == "Conv2D" and conv_row["output_shape"] == [4, 4, 2] and conv_row["parameters"] == 4
    assert conv_row["weights"]["shape"] == [1, 1, 1, 2]
    assert (conv_row["weights"]["min"], conv_row["weights"]["max"], conv_row["weights"]["mean"]) == (-2.0, 1.0, -0.5)
    activation = np.concatenate([image * 1.0 + 0.5, image * -2.0], axis=-1)
    assert conv_row["activations"]["max"] == pytest.approx(activation.max())
    assert conv_row["activations"]["min"] == pytest.approx(activation.min())
    assert conv_row["activations"]["std"] == pytest.approx(activation.std(), rel=1e-5)
    assert sum(conv_row["activations"]["histogram"]["counts"]) == activation.size
    tiles = conv_row["tiles"]
    assert tiles.shape == (2, 4, 4) and tiles.dtype == np.uint8
    assert tiles[0, -1, -1] > tiles[0, 0, 0] and tiles[1, -1, -1] == 0  # one scale for the layer
    assert conv_row["channels_shown"] == "2 of 2"
    assert rows["flatten"]["weights"] is None and rows["flatten"]["parameters"] == 0
    dense_row = rows["dense"]
    assert dense_row["parameters"] == 99 and dense_row["output_shape"] == [3]
    assert np.allclose(dense_row["vector"], activation.reshape(-1) @ dense_kernel, rtol=1e-5)
    assert sum(dense_row["weights"]["histogram"]["counts"]) == 96

    restored = layer_stats.unpack(dict(layer_stats.pack(list(rows.values()))))
    assert [r["name"] for r in restored] == ["conv", "flatten", "dense"]
    assert np.array_equal(restored[0]["tiles"], tiles) and np.array_equal(restored[2]["vector"], dense_row["vector"])
    assert "tiles" not in restored[1] and "vector" in restored[1]  # flatten: a 2-D output, its vector


def test_big_activations_are_subsampled_to_a_small_payload():
    activation = np.random.default_rng(0).uniform(size=(200, 100, 40)).astype(np.float32)
    tiles = layer_stats.tiles(activation)
    assert tiles.shape[0] == layer_stats.MAX_TILES and max(tiles.shape[1:]) <= layer_stats.MAX_TILE_SIDE


def test_cli_classify_details_writes_what_the_network_saw(jobs_dir, image_folder, tmp_path, capsys):
    assert cli.main(["dataset", "create", "--folder", str(image_folder), "--name", "d", "--wait"]) == 0
    dataset = JobStore(jobs_dir).list("dataset")[0]
    assert cli.main(["model", "train", "--dataset", dataset.id, "--name", "m", "--epochs", "1",
                     "--batch-size", "8", "--wait"]) == 0
    model = JobStore(jobs_dir).list("model")[0]
    capsys.readouterr()
    image, out = image_folder / "square" / "000.png", tmp_path / "details"  # no .npz: the path is kept as given

    assert cli.main(["classify", model.id, str(image), "--json", "--details", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["details"] == str(out) and result["predictions"]
    spec = json.loads((model.dir / "model.json").read_text())["image"]  # the dataset's size, not the file's
    with np.load(out) as details:
        assert details["seen"].shape == (spec["height"], spec["width"], 3) and details["seen"].dtype == np.uint8
        assert details["seen"][..., 1].mean() > 150 > details["seen"][..., 0].mean()  # the green "square" image
        assert details["heatmap"].shape == (spec["height"], spec["width"])
        assert 0 <= details["heatmap"].min() and details["heatmap"].max() <= 1
        assert str(details["gradcam_class"]) == result["predictions"][0]["label"]
        rows = layer_stats.unpack(details)
    assert rows[0]["name"] == "normalize" and rows[-1]["name"] == "logits"
    assert rows[-1]["output_shape"] == [3] and rows[-1]["vector"].shape == (3,)
    assert any("tiles" in row and row["type"] == "Conv2D" for row in rows)

    assert cli.main(["classify", model.id, str(image), str(image), "--details", str(out)]) == 2
    assert "--details explains one image" in capsys.readouterr().err
    assert cli.main(["classify", model.id, str(image), "--details", str(tmp_path / "no" / "x.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
