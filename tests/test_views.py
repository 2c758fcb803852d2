"""The built-in views (digits_engine.plugins.views): exact process_data outputs
on small known arrays, the messages for wrong shapes, and render() inside a
real Streamlit script (AppTest)."""
import math
import sys

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from digits_engine.plugins.interfaces import ViewPlugin
from digits_engine.plugins.views import as_rgb_image, classification, raw, segmentation
from digits_engine.plugins.views.segmentation import PAIRED, blend, class_edges

BLUE = PAIRED[1]  # class 1 in the Paired colours: (31, 120, 180)
GREEN = PAIRED[2]  # class 2: (178, 223, 138)


def block_scores() -> np.ndarray:
    """5x6x3 scores: class 1 in rows 1-3 x columns 1-3, class 2 at the pixel (4, 5), background elsewhere."""
    scores = np.zeros((5, 6, 3), np.float32)
    scores[..., 0] = 0.6
    scores[1:4, 1:4, 1] = 0.9
    scores[4, 5, 2] = 0.8
    return scores


EXPECTED_CLASSES = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 0, 0, 0, 0, 2],
], np.uint8)

EXPECTED_OUTLINE = np.array([
    [0, 0, 0, 0, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 1, 0, 1, 0, 0],
    [0, 1, 1, 1, 0, 0],
    [0, 0, 0, 0, 0, 1],
], bool)

GRAY = np.full((5, 6, 1), 100, np.uint8)


# ---------------------------------------------------------------- the contract

@pytest.mark.parametrize("module, view_id, title, tasks", [
    (classification, "image-classification", "Classification", ("classification",)),
    (segmentation, "image-segmentation", "Segmentation", ("segmentation",)),
    (raw, "all-raw-data", "Raw data", ("classification", "segmentation", "detection")),
])
def test_each_module_has_a_visualization_class(module, view_id, title, tasks):
    view = module.Visualization
    assert issubclass(view, ViewPlugin)
    assert (view.get_id(), view.get_title(), view.tasks()) == (view_id, title, tasks)
    view()  # defaults are enough


def test_no_streamlit_or_tensorflow_import():
    code = ("import sys, digits_engine.plugins.views.classification, digits_engine.plugins.views.segmentation, "
            "digits_engine.plugins.views.raw; "
            "print(sorted(m for m in ('streamlit', 'tensorflow', 'keras', 'matplotlib') if m in sys.modules))")
    import subprocess
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_gray_and_rgba_images_become_rgb():
    gray = np.arange(6, dtype=np.uint8).reshape(2, 3)
    rgb = as_rgb_image(gray)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert (rgb[..., 0] == gray).all() and (rgb[..., 1] == gray).all() and (rgb[..., 2] == gray).all()
    assert (as_rgb_image(gray[:, :, None]) == rgb).all()
    rgba = np.dstack([rgb, np.full((2, 3), 7, np.uint8)])
    assert (as_rgb_image(rgba) == rgb).all()
    # other types are stretched to 0..255
    assert as_rgb_image(np.array([[0.0, 0.5, 1.0]]))[0, :, 0].tolist() == [0, 128, 255]
    assert as_rgb_image(np.array([[True, False]]))[0, :, 0].tolist() == [255, 0]


# ---------------------------------------------------------------- segmentation

def test_segmentation_argmax_overlay_outline_and_legend():
    view = segmentation.Visualization(labels=["background", "heart", "lung"], opacity=0.25)
    data = view.process_data("slice-1", GRAY, block_scores())
    assert data["classes"].dtype == np.uint8
    assert (data["classes"] == EXPECTED_CLASSES).all()
    assert data["image"].shape == (5, 6, 3) and (data["image"] == 100).all()  # gray repeated
    # a class 1 pixel: round(0.75 * 100 + 0.25 * colour)
    assert data["overlay"][2, 2].tolist() == [83, 105, 120]
    assert data["overlay"][1, 1].tolist() == [83, 105, 120]  # "fill" draws no outline
    # class 2: (0.75 * 100 + 0.25 * (178, 223, 138)) = (119.5, 130.75, 109.5), rounded half to even
    assert data["overlay"][4, 5].tolist() == [120, 131, 110]
    background = EXPECTED_CLASSES == 0
    assert (data["overlay"][background] == 100).all()  # untouched
    assert data["outline"].dtype == bool and (data["outline"] == EXPECTED_OUTLINE).all()
    assert data["legend"] == [(0, "background", (0, 0, 0), 20), (1, "heart", BLUE, 9), (2, "lung", GREEN, 1)]
    assert data["ground_truth"] is None and data["iou"] is None
    assert data["mask"][2, 2].tolist() == list(BLUE) and data["mask"][0, 0].tolist() == [0, 0, 0]


def test_segmentation_outline_and_both():
    outline = segmentation.Visualization(opacity=0.25, show="outline").process_data(0, GRAY, block_scores())
    assert (outline["overlay"][EXPECTED_OUTLINE & (EXPECTED_CLASSES == 1)] == BLUE).all()
    assert outline["overlay"][4, 5].tolist() == list(GREEN)
    assert outline["overlay"][2, 2].tolist() == [100, 100, 100]  # inside: not filled
    assert (outline["overlay"][EXPECTED_CLASSES == 0] == 100).all()
    both = segmentation.Visualization(opacity=0.25, show="both").process_data(0, GRAY, block_scores())
    assert both["overlay"][1, 1].tolist() == list(BLUE)
    assert both["overlay"][2, 2].tolist() == [83, 105, 120]
    assert (both["overlay"][EXPECTED_CLASSES == 0] == 100).all()


def test_class_edges_between_two_classes_and_at_the_image_border():
    classes = np.array([[1, 1, 2, 2],
                        [1, 1, 2, 2]], np.uint8)
    assert class_edges(classes).tolist() == [[False, True, True, False]] * 2
    assert not class_edges(np.ones((3, 3), np.uint8)).any()  # the border of the image is no edge


def test_segmentation_iou_against_the_ground_truth():
    truth = np.zeros((5, 6, 1), np.uint8)
    truth[1:4, 2:5] = 1  # the block, one column to the right
    data = segmentation.Visualization().process_data(0, GRAY, block_scores(), ground_truth=truth)
    assert (data["ground_truth"] == truth[:, :, 0]).all()
    # class 1: 6 pixels shared of 12; class 2: predicted once, never true; background: 17 of 24
    assert data["iou"] == {0: 17 / 24, 1: 0.5, 2: 0.0}
    assert math.isclose(data["mean_iou"], (17 / 24 + 0.5 + 0.0) / 3)
    assert math.isclose(data["pixel_accuracy"], 23 / 30)
    perfect = segmentation.Visualization().process_data(0, GRAY, block_scores(), ground_truth=EXPECTED_CLASSES)
    assert perfect["iou"] == {0: 1.0, 1: 1.0, 2: 1.0} and perfect["mean_iou"] == 1.0


def test_segmentation_accepts_class_maps_channels_first_and_a_batch_of_one():
    view = segmentation.Visualization()
    for output in (EXPECTED_CLASSES.astype(np.int64), EXPECTED_CLASSES[:, :, None], EXPECTED_CLASSES.astype(float),
                   np.moveaxis(block_scores(), -1, 0), block_scores()[None]):
        assert (view.process_data(0, GRAY, output)["classes"] == EXPECTED_CLASSES).all()


def test_binary_segmentation():
    scores = np.zeros((2, 3, 2), np.float32)
    scores[..., 0] = [[0.9, 0.2, 0.7], [0.1, 0.6, 0.4]]
    scores[..., 1] = 1 - scores[..., 0]
    data = segmentation.Visualization(opacity=1.0).process_data(0, np.zeros((2, 3), np.uint8), scores)
    assert data["classes"].tolist() == [[0, 1, 0], [1, 0, 1]]
    assert data["legend"] == [(0, "background", (0, 0, 0), 3), (1, "foreground", BLUE, 3)]
    assert data["overlay"][0, 1].tolist() == list(BLUE) and data["overlay"][0, 0].tolist() == [0, 0, 0]
    # a single sigmoid channel: the foreground probability, cut at 0.5
    sigmoid = segmentation.Visualization().process_data(0, np.zeros((2, 3), np.uint8), scores[..., 1:])
    assert sigmoid["classes"].tolist() == [[0, 1, 0], [1, 0, 1]]


def test_segmentation_colormaps():
    image = np.zeros((1, 3, 3), np.uint8)
    classes = np.array([[0, 1, 2]])
    gray = segmentation.Visualization(colormap="none", opacity=1.0).process_data(0, image, classes)
    assert gray["overlay"][0].tolist() == [[0, 0, 0], [128, 128, 128], [255, 255, 255]]
    assert [entry[2] for entry in gray["legend"]] == [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    palette = [(9, 9, 9), (255, 0, 0), (0, 255, 0)]
    for given in (palette, [v for rgb in palette for v in rgb]):  # triples, or PIL's flat list
        data = segmentation.Visualization(colormap="palette", palette=given, opacity=1.0).process_data(0, image, classes)
        assert data["overlay"][0].tolist() == [[0, 0, 0], [255, 0, 0], [0, 255, 0]]  # background still untouched
        assert data["legend"][0][2] == (9, 9, 9) and data["notes"] == []
    fallback = segmentation.Visualization(colormap="palette", opacity=1.0).process_data(0, image, classes)
    assert fallback["overlay"][0, 1].tolist() == list(BLUE)
    assert "no palette" in fallback["notes"][0]
    # opacity 0: the image as it is
    assert (segmentation.Visualization(opacity=0.0).process_data(0, GRAY, block_scores())["overlay"] == 100).all()


def test_blend_is_the_helper_render_uses():
    image = np.full((1, 2, 3), 200, np.uint8)
    classes = np.array([[0, 1]], np.uint8)
    colours = np.array([[0, 0, 0], [0, 100, 255]], np.uint8)
    assert blend(image, classes, colours, 0.5).tolist() == [[[200, 200, 200], [100, 150, 228]]]
    assert blend(image, classes, colours, 1.0).tolist() == [[[200, 200, 200], [0, 100, 255]]]


def test_segmentation_bad_shapes_and_values_are_explained():
    view = segmentation.Visualization()
    with pytest.raises(ValueError, match=r"shape 3x3x2.*expected 5x6xK"):
        view.process_data(0, GRAY, np.zeros((3, 3, 2)))
    with pytest.raises(ValueError, match=r"shape 5x6x2\b.*expected HxWxC"):
        view.process_data(0, np.zeros((5, 6, 2), np.uint8), block_scores())
    with pytest.raises(ValueError, match=r"ground truth has shape 5x5; expected a 5x6"):
        view.process_data(0, GRAY, block_scores(), ground_truth=np.zeros((5, 5)))
    with pytest.raises(ValueError, match=r"class ids from -1"):
        view.process_data(0, GRAY, EXPECTED_CLASSES.astype(int) - 1)
    with pytest.raises(ValueError, match="fractional values outside 0..1"):
        view.process_data(0, GRAY, EXPECTED_CLASSES + 0.5)
    with pytest.raises(ValueError, match="NaN"):
        view.process_data(0, GRAY, np.full((5, 6, 3), np.nan))
    with pytest.raises(ValueError, match="Opacity must be at most 1"):
        segmentation.Visualization(opacity=1.5)
    with pytest.raises(ValueError, match="Colours must be one of paired, palette, none"):
        segmentation.Visualization(colormap="jet")
    with pytest.raises(ValueError, match="palette has shape 2x2"):
        segmentation.Visualization(palette=[(1, 2), (3, 4)])


# ---------------------------------------------------------------- classification

def test_classification_probabilities_top_k_and_ground_truth():
    view = classification.Visualization(labels=["cat", "dog", "fox"], top=2)
    data = view.process_data("a.png", np.zeros((4, 4), np.uint8), np.array([0.1, 0.6, 0.3]), ground_truth=1)
    assert data["predictions"] == [{"label": "dog", "probability": 0.6}, {"label": "fox", "probability": 0.3}]
    assert data["ground_truth"] == "dog" and data["correct"] is True
    assert data["image"].shape == (4, 4, 3) and data["image"].dtype == np.uint8
    wrong = view.process_data("a.png", np.zeros((4, 4, 3), np.uint8), [[0.1, 0.6, 0.3]], ground_truth="cat")
    assert wrong["ground_truth"] == "cat" and wrong["correct"] is False
    assert view.process_data(0, GRAY, [0.1, 0.6, 0.3])["ground_truth"] is None


def test_classification_softmax_of_logits():
    data = classification.Visualization().process_data(0, GRAY, [1.0, 3.0, 2.0])
    e = np.exp([1.0, 3.0, 2.0])
    expected = e / e.sum()
    assert [p["label"] for p in data["predictions"]] == ["class 1", "class 2", "class 0"]
    assert np.allclose([p["probability"] for p in data["predictions"]], expected[[1, 2, 0]])
    assert math.isclose(sum(p["probability"] for p in data["predictions"]), 1.0)
    # probabilities that sum to 1 are kept; negative scores are logits even when they sum to 1
    assert classification.Visualization().process_data(0, GRAY, [0.25, 0.75])["predictions"][0]["probability"] == 0.75
    negative = classification.Visualization().process_data(0, GRAY, [-1.0, 2.0])["predictions"]
    assert math.isclose(negative[0]["probability"], 1 / (1 + math.exp(-3)))


def test_classification_bad_outputs_are_explained():
    view = classification.Visualization(labels=["cat", "dog", "fox"])
    with pytest.raises(ValueError, match=r"shape 3x3; .*one score per class"):
        view.process_data(0, GRAY, np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"shape 4 .*3 classes: expected shape 3"):
        view.process_data(0, GRAY, [0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match=r"shape 5x6x2.*expected HxWxC"):
        view.process_data(0, np.zeros((5, 6, 2)), [0.1, 0.2, 0.7])
    with pytest.raises(ValueError, match="NaN"):
        view.process_data(0, GRAY, [0.1, float("nan"), 0.2])
    with pytest.raises(ValueError, match="class id 7 is not a class"):
        view.process_data(0, GRAY, [0.1, 0.2, 0.7], ground_truth=7)
    with pytest.raises(ValueError, match="Classes shown must be at least 1"):
        classification.Visualization(top=0)


# ---------------------------------------------------------------- raw

def test_raw_summary():
    data = raw.Visualization().process_data(0, GRAY, np.arange(6).reshape(2, 3))
    assert data == {"shape": [2, 3], "dtype": "int64", "min": 0, "max": 5, "mean": 2.5, "values": [0, 1, 2, 3, 4, 5]}
    big = raw.Visualization().process_data(0, GRAY, np.arange(150, dtype=np.float32).reshape(10, 15))
    assert big["values"] == [float(i) for i in range(100)] and big["values_shown"] == "first 100 of 150"
    assert (big["min"], big["max"], big["mean"]) == (0.0, 149.0, 74.5)
    holes = raw.Visualization().process_data(0, GRAY, [1.0, float("nan"), 3.0])
    assert (holes["min"], holes["max"], holes["mean"], holes["values"], holes["non_finite"]) == (1.0, 3.0, 2.0, [1.0, None, 3.0], 1)
    named = raw.Visualization().process_data(0, GRAY, {"scores": [0.5, 0.5], "mask": np.zeros((2, 2), np.uint8)})
    assert named["outputs"]["scores"]["mean"] == 0.5 and named["outputs"]["mask"]["shape"] == [2, 2]


# ---------------------------------------------------------------- render, in a real Streamlit script

def view_page(name: str, ground_truth: bool = False) -> None:
    """An app script (AppTest runs this function's source): two inputs through one view, the results
    kept in session_state as a page keeps them, so reruns only render."""
    import numpy as np
    import streamlit as st

    from digits_engine.plugins.views import classification, raw, segmentation

    image = np.full((5, 6, 1), 100, np.uint8)
    scores = np.zeros((5, 6, 3), np.float32)
    scores[..., 0] = 0.6
    scores[1:4, 1:4, 1] = 0.9
    if name == "segmentation":
        view = segmentation.Visualization(labels=["background", "heart", "lung"], colormap="palette")
        outputs, truth = [scores, scores[..., :2]], np.zeros((5, 6), np.uint8)
    elif name == "classification":
        view = classification.Visualization(labels=["cat", "dog", "fox"])
        outputs, truth = [[0.2, 0.5, 0.3], [2.0, 1.0, 0.0]], 1
    else:
        view = raw.Visualization()
        outputs, truth = [scores, {"a": [1, 2], "b": [3.0]}], None
    if "results" not in st.session_state:
        st.session_state.runs = 0
        st.session_state.results = [view.process_data(f"input-{i}", image, output,
                                                      truth if ground_truth else None)
                                     for i, output in enumerate(outputs)]
    st.session_state.runs += 1
    for data in st.session_state.results:
        view.render(data, st)


def run_view(name: str, ground_truth: bool = False) -> AppTest:
    at = AppTest.from_function(view_page, args=(name, ground_truth), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def image_urls(at: AppTest) -> list[str]:
    return [img.url for element in at.get("image") for img in element.proto.imgs]


def test_render_segmentation_and_the_slider_reblends():
    at = run_view("segmentation")
    assert len(at.slider) == 2 and at.slider[0].value == 0.5
    assert at.slider[0].key == "image-segmentation-opacity-input-0"
    before = image_urls(at)
    assert len(before) == 4  # input and prediction, for each of the two inputs
    assert any("no palette" in info.value for info in at.info)
    legend = " ".join(m.value for m in at.markdown)
    assert "heart: 9 px" in legend and "rgb(31,120,180)" in legend
    at.slider[0].set_value(1.0).run()
    assert not at.exception
    after = image_urls(at)
    assert after[0] == before[0] and after[1] != before[1]  # the overlay changed, the input did not
    assert after[2:] == before[2:]  # the other input's slider did not move
    assert at.session_state.runs == 2  # render ran again; process_data did not


def test_render_segmentation_with_ground_truth():
    at = run_view("segmentation", ground_truth=True)
    assert len(image_urls(at)) == 6  # input, prediction, ground truth
    assert at.metric[0].label == "Mean IoU"
    assert len(at.dataframe) == 2


def test_render_classification():
    at = run_view("classification", ground_truth=True)
    assert len(image_urls(at)) == 2
    charts = at.get("plotly_chart")
    assert len(charts) == 2
    assert '"dog"' in charts[0].proto.spec and "Top 3: dog" in charts[0].proto.spec
    marks = " ".join(m.value for m in at.markdown)
    assert "✓ correct" in marks and "✗ wrong" in marks  # the second input's best class is cat


def test_render_raw():
    at = run_view("raw")
    assert len(at.json) == 3  # one output, then two named ones
    assert any("Shape 5x6x3, float32" in m.value for m in at.markdown)
