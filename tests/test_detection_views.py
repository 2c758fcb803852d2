"""The bounding-box view (digits_engine.plugins.views.boxes): the accepted
detection forms, exact box drawing on small known images, the score threshold,
the messages for bad input, and render() inside a real Streamlit script (AppTest)."""
import subprocess
import sys

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from digits_engine.plugins import registry
from digits_engine.plugins.interfaces import ViewPlugin
from digits_engine.plugins.views import boxes
from digits_engine.plugins.views.boxes import COLOURS, DASH, Visualization, draw_boxes, picture

GRAY = 100
CAR, VAN = COLOURS[0], COLOURS[1]

# two detections on a 60x80 image: a confident van and an unsure car (given in the wrong order: the view sorts)
DETECTIONS = {"boxes": [[10, 30, 40, 50], [20, 25, 70, 55]], "scores": [0.2, 0.9], "classes": [0, 1]}
TRUTH = {"boxes": np.array([[12, 28, 42, 52]], np.float32), "classes": np.array([0], np.int64)}


def gray(height: int = 60, width: int = 80) -> np.ndarray:
    return np.full((height, width, 3), GRAY, np.uint8)


def pixels_of(image: np.ndarray, colour) -> int:
    return int((image == np.array(colour, np.uint8)).all(axis=2).sum())


# ---------------------------------------------------------------- the contract

def test_registered_as_a_view_for_detection():
    view = registry.get("view", "image-bounding-boxes")
    assert view is Visualization and issubclass(view, ViewPlugin)
    assert (view.get_id(), view.get_title(), view.tasks()) == ("image-bounding-boxes", "Bounding boxes",
                                                               ("detection",))
    assert view().threshold == 0.3
    assert Visualization(threshold="0.5").threshold == 0.5
    with pytest.raises(ValueError, match="Score threshold"):
        Visualization(threshold=1.5)


def test_no_streamlit_or_tensorflow_import():
    code = ("import sys, digits_engine.plugins.views.boxes; "
            "print(sorted(m for m in ('streamlit', 'tensorflow', 'keras', 'matplotlib') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# ---------------------------------------------------------------- process_data

def test_process_data_sorts_by_score_and_names_the_classes():
    data = Visualization(labels=["car", "van"]).process_data("img-1", gray()[:, :, :1], DETECTIONS, TRUTH)
    assert data["image"].shape == (60, 80, 3) and data["input_id"] == "img-1"
    assert data["scores"].tolist() == [0.9, 0.2]
    assert data["classes"].tolist() == [1, 0]
    assert data["boxes"].tolist() == [[20, 25, 70, 55], [10, 30, 40, 50]]
    assert data["class_names"] == ["car", "van"]
    assert data["truth"]["boxes"].tolist() == [[12, 28, 42, 52]] and data["truth"]["classes"].tolist() == [0]
    assert data["threshold"] == 0.3


def test_the_other_accepted_forms_give_the_same_detections():
    view = Visualization(labels=["car", "van"])
    expected = view.process_data(0, gray(), DETECTIONS)
    batch_of_one = view.process_data(0, gray(), [{k: np.array(v) for k, v in DETECTIONS.items()}])
    listing = [{"label": "car", "score": 0.2, "box": [10, 30, 40, 50]},
               {"label": "van", "score": 0.9, "box": [20, 25, 70, 55]}]
    from_json = view.process_data(0, gray(), listing)
    for data in (batch_of_one, from_json):
        for key in ("boxes", "scores", "classes"):
            assert data[key].tolist() == expected[key].tolist()


def test_no_detections_and_a_background_only_truth():
    data = Visualization(labels=["car"]).process_data(0, gray(), {"boxes": [], "scores": [], "classes": []},
                                                      {"boxes": np.zeros((0, 4), np.float32), "classes": []})
    assert data["boxes"].shape == (0, 4) and data["truth"]["boxes"].shape == (0, 4)
    assert (picture(data, 0.0) == GRAY).all()  # nothing drawn
    assert boxes.header(data, 0, 0.3).startswith("**0 of 0 boxes** with a score of at least 0.30 · ground truth")


def test_classes_without_labels_are_numbered():
    data = Visualization().process_data(0, gray(), {"boxes": [[1, 1, 5, 5]], "scores": [0.5], "classes": [2]})
    assert data["class_names"] == ["class 0", "class 1", "class 2"]


@pytest.mark.parametrize("output, truth, message", [
    (np.zeros((1, 15, 20, 6), np.float32), None, r"expects decoded detections.*Is this a detection model"),
    ({"boxes": [[1, 2, 3]], "scores": [0.5], "classes": [0]}, None, r"boxes have shape 1x3; expected Nx4"),
    ({"boxes": [[1, 2, 3, 4]], "scores": [0.5, 0.4], "classes": [0]}, None, r"1 boxes but 2 scores"),
    ({"boxes": [[1, 2, 3, 4]], "scores": [np.nan], "classes": [0]}, None, r"NaN or infinite.*diverged"),
    ({"boxes": [[1, 2, 3, np.inf]], "scores": [0.5], "classes": [0]}, None, r"NaN or infinite coordinates"),
    ({"boxes": [[5, 2, 3, 4]], "scores": [0.5], "classes": [0]}, None, r"box 0 is \(5, 2, 3, 4\).*left, top"),
    ({"boxes": [[1, 2, 3, 4]], "scores": [0.5], "classes": [2]}, None,
     r"detections hold class id 2 but the model has 2 classes \(ids 0 to 1: car, van\)"),
    ({"boxes": [[1, 2, 3, 4]], "scores": [0.5], "classes": [-1]}, None, r"whole numbers from 0"),
    ([{"label": "bus", "score": 0.5, "box": [1, 2, 3, 4]}], None, r"label 'bus'.*not a class.*car, van"),
    (DETECTIONS, {"boxes": [[1, 2, 3, 4]], "classes": [0, 1]}, r"ground truth hold 1 boxes but 2 classes"),
    (DETECTIONS, {"boxes": [[1, 2, 3, 4]], "classes": [5]}, r"ground truth hold class id 5"),
])
def test_bad_outputs_and_truths_are_explained(output, truth, message):
    with pytest.raises(ValueError, match=message):
        Visualization(labels=["car", "van"]).process_data(0, gray(), output, truth)


# ---------------------------------------------------------------- drawing

def test_a_box_is_outlined_in_its_class_colour_and_labelled():
    image = draw_boxes(gray(), [[10, 30, 40, 50]], [1], ["car", "van"], scores=[0.9], line_width=1)
    # edges are pixel boundaries: columns 10..39, rows 30..49
    for y, x in ((30, 10), (30, 39), (49, 10), (49, 39), (40, 10), (40, 39), (30, 25), (49, 25)):
        assert tuple(image[y, x]) == VAN, (y, x)
    assert (image[31:49, 11:39] == GRAY).all()  # the inside is untouched
    assert (image[50:, :] == GRAY).all() and (image[30:, 40:] == GRAY).all()  # below and right: untouched
    label = image[:30, 10:40]  # the label sits above the box: white text on the class colour
    assert pixels_of(label, VAN) > 20 and int((label.min(axis=2) > 200).sum()) > 5  # (anti-aliased) white


def test_ground_truth_edges_are_dashed():
    image = draw_boxes(gray(), [[10, 30, 40, 50]], [0], ["car"], dashed=True, line_width=1)
    top_edge = image[30, 10:40]  # drawn from left to right
    drawn = (top_edge == np.array(CAR, np.uint8)).all(axis=1)
    assert drawn[:DASH].all() and not drawn[DASH:2 * DASH].any() and drawn[2 * DASH:3 * DASH].all()


def test_boxes_are_clipped_and_scaled():
    image = draw_boxes(gray(), [[-5, -5, 200, 200]], [0], ["car"], scores=[0.5], line_width=1)
    assert tuple(image[59, 0]) == CAR and tuple(image[59, 79]) == CAR and tuple(image[30, 79]) == CAR
    big = draw_boxes(boxes.enlarge(gray(6, 8), 10), [[1, 3, 4, 5]], [0], ["car"], line_width=1, scale=10)
    assert big.shape == (60, 80, 3)
    assert tuple(big[49, 10]) == CAR and tuple(big[49, 39]) == CAR and (big[31:49, 11:39] == GRAY).all()
    assert boxes.display_scale(60, 80) == 4 and boxes.display_scale(400, 500) == 1


def test_the_threshold_hides_low_scores_and_the_truth_is_drawn_too():
    view = Visualization(labels=["car", "van"])
    data = view.process_data(0, gray(), DETECTIONS)
    both, confident, none = picture(data, 0.1), picture(data, 0.5), picture(data, 0.95)
    assert both.shape == (240, 320, 3)  # enlarged 4 times for display
    assert pixels_of(both, CAR) > 0 and pixels_of(both, VAN) > 0
    assert pixels_of(confident, CAR) == 0 and pixels_of(confident, VAN) > 0
    assert (none == GRAY).all()
    with_truth = picture(view.process_data(0, gray(), DETECTIONS, TRUTH), 0.95)
    assert pixels_of(with_truth, CAR) > 0 and pixels_of(with_truth, VAN) == 0
    assert boxes.header(data, 1, 0.5).startswith("**1 of 2 boxes** with a score of at least 0.50")


# ---------------------------------------------------------------- render, in a real Streamlit script

def view_page(with_truth: bool) -> None:
    """An app script (AppTest runs this function's source): two images through the view, the results kept
    in session_state as a page keeps them, so reruns only render."""
    import numpy as np
    import streamlit as st

    from digits_engine.plugins.views.boxes import Visualization

    view = Visualization(labels=["car", "van"])
    detections = {"boxes": [[10, 30, 40, 50], [20, 25, 70, 55]], "scores": [0.2, 0.9], "classes": [0, 1]}
    truth = {"boxes": [[12, 28, 42, 52]], "classes": [0]} if with_truth else None
    if "results" not in st.session_state:
        st.session_state.runs = 0
        image = np.full((60, 80, 3), 100, np.uint8)
        st.session_state.results = [view.process_data(f"input-{i}", image, detections, truth) for i in range(2)]
    st.session_state.runs += 1
    for data in st.session_state.results:
        view.render(data, st)


def image_urls(at: AppTest) -> list[str]:
    return [img.url for element in at.get("image") for img in element.proto.imgs]


def test_render_and_the_slider_redraws():
    at = AppTest.from_function(view_page, args=(False,), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.slider) == 2 and at.slider[0].value == 0.3
    assert at.slider[0].key == "image-bounding-boxes-threshold-input-0"
    headers = [m.value for m in at.markdown]
    assert headers[0].startswith("**1 of 2 boxes** with a score of at least 0.30") and "van: 1" in headers[0]
    assert len(at.dataframe) == 2 and at.dataframe[0].value["class"].tolist() == ["van"]
    before = image_urls(at)
    assert len(before) == 2
    at.slider[0].set_value(0.1).run()
    assert not at.exception
    assert at.markdown[0].value.startswith("**2 of 2 boxes**") and "car: 1" in at.markdown[0].value
    assert at.dataframe[0].value["class"].tolist() == ["van", "car"]
    after = image_urls(at)
    assert after[0] != before[0] and at.markdown[1].value == headers[1]  # only the first image changed
    assert at.session_state.runs == 2  # render ran again; process_data did not


def test_render_with_ground_truth():
    at = AppTest.from_function(view_page, args=(True,), default_timeout=30).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "ground truth (dashed): 1 box" in at.markdown[0].value
