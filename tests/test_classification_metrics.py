"""Classification metrics on a hand-made prediction set whose confusion matrix,
precision, recall, F1 and top-k accuracy are worked out by hand below."""
import numpy as np
import pytest

from digits_engine.classification_metrics import (MetricsAccumulator, confusion_matrix, per_class,
                                                  top_k_accuracy)

LABELS = ["cat", "dog", "fox", "owl", "bee", "ant"]


def one_hot_ish(order: list[int], confidence: float) -> list[float]:
    """Probabilities over the 6 classes: `confidence` on order[0], then decreasing along `order`."""
    p = np.zeros(len(LABELS))
    rest = (1 - confidence) * np.array([0.4, 0.3, 0.15, 0.1, 0.05])
    p[order[0]] = confidence
    p[order[1:]] = rest[:len(order) - 1]
    return p.tolist()


# 10 images: (true, the classes ranked by the model, confidence of the first)
SET = [
    (0, [0, 1, 2, 3, 4, 5], 0.90),   # row 0: cat right
    (0, [0, 2, 1, 3, 4, 5], 0.60),   # row 1: cat right
    (0, [1, 0, 2, 3, 4, 5], 0.70),   # row 2: cat -> dog (true 2nd)
    (1, [1, 0, 2, 3, 4, 5], 0.80),   # row 3: dog right
    (1, [0, 2, 3, 4, 1, 5], 0.95),   # row 4: dog -> cat (true 5th)
    (1, [2, 3, 4, 5, 0, 1], 0.55),   # row 5: dog -> fox (true 6th: outside the top 5)
    (2, [2, 1, 0, 3, 4, 5], 0.65),   # row 6: fox right
    (2, [2, 0, 1, 3, 4, 5], 0.85),   # row 7: fox right
    (2, [1, 2, 0, 3, 4, 5], 0.50),   # row 8: fox -> dog (true 2nd)
    (3, [0, 3, 1, 2, 4, 5], 0.75),   # row 9: owl -> cat (true 2nd)
]
TRUE = np.array([t for t, _, _ in SET])
PROBS = np.array([one_hot_ish(order, c) for _, order, c in SET])
CONFUSION = [  # rows true, columns predicted
    [2, 1, 0, 0, 0, 0],
    [1, 1, 1, 0, 0, 0],
    [0, 1, 2, 0, 0, 0],
    [1, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 0],
]


def test_confusion_matrix():
    assert confusion_matrix(TRUE, PROBS.argmax(1), 6).tolist() == CONFUSION


def test_per_class_precision_recall_f1():
    rows = {r["label"]: r for r in per_class(np.array(CONFUSION), LABELS)}
    # cat: predicted 4 times, 2 right; 3 true cats
    assert rows["cat"]["precision"] == pytest.approx(2 / 4)
    assert rows["cat"]["recall"] == pytest.approx(2 / 3)
    assert rows["cat"]["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert rows["cat"]["support"] == 3
    # dog: predicted 3 times (rows 2, 3, 8), 1 right; 3 true dogs
    assert (rows["dog"]["precision"], rows["dog"]["recall"]) == pytest.approx((1 / 3, 1 / 3))
    # fox: predicted 3 times (5, 6, 7), 2 right; 3 true foxes
    assert (rows["fox"]["precision"], rows["fox"]["recall"]) == pytest.approx((2 / 3, 2 / 3))
    # owl: never predicted (precision 0, not NaN), 1 true owl never found
    assert rows["owl"] == {"label": "owl", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    # bee: neither present nor predicted
    assert rows["bee"] == {"label": "bee", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_top_k_accuracy():
    assert top_k_accuracy(TRUE, PROBS, 1) == pytest.approx(5 / 10)
    assert top_k_accuracy(TRUE, PROBS, 2) == pytest.approx(8 / 10)  # + rows 2, 8, 9
    assert top_k_accuracy(TRUE, PROBS, 5) == pytest.approx(9 / 10)  # + row 4; row 5's dog is 6th
    assert top_k_accuracy(TRUE, PROBS, 6) == pytest.approx(1.0)
    assert top_k_accuracy([], np.zeros((0, 6)), 5) is None


def test_accumulator_in_batches_matches_the_whole_set():
    acc = MetricsAccumulator(LABELS, mistakes=3, top_per_class=2)
    for start in range(0, 10, 3):  # batches of 3, 3, 3, 1
        rows = np.arange(start, min(start + 3, 10))
        acc.add(rows, TRUE[rows], PROBS[rows])
    result = acc.result()
    assert (result["count"], result["labelled"]) == (10, 10)
    assert result["top1"] == pytest.approx(0.5) and result["top5"] == pytest.approx(0.9)
    assert result["confusion"] == CONFUSION
    assert result["per_class"] == per_class(np.array(CONFUSION), LABELS)
    assert result["predicted_counts"] == [4, 3, 3, 0, 0, 0]
    # mistakes, most confident first: row 4 (0.95), row 9 (0.75), row 2 (0.70); then 5 (0.55) and 8 (0.50)
    assert result["mistakes"] == [4, 9, 2]
    # top per class: the highest probability of that class, whatever was predicted
    assert result["top_per_class"]["cat"] == [4, 0]
    assert result["top_per_class"]["fox"] == [7, 6]
    assert result["top_per_class"]["owl"] == [5, 9]  # row 5: owl 2nd, 0.45 * 0.4; row 9: owl 2nd, 0.25 * 0.4
    assert result["labels"] == LABELS


def test_rows_without_labels_and_classes_the_model_cannot_predict():
    acc = MetricsAccumulator(["a", "b", "only-true"])  # the model predicts 2 classes
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    acc.add([0, 1, 2, 3], [0, -1, 2, 1], probs)
    result = acc.result()
    assert (result["count"], result["labelled"]) == (4, 3)
    assert result["top1"] == pytest.approx(2 / 3)
    assert result["top5"] == pytest.approx(2 / 3)  # "only-true" is never among the model's classes
    assert result["confusion"] == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert result["mistakes"] == [2]
    assert result["top_per_class"]["only-true"] == []

    unlabelled = MetricsAccumulator(["a", "b"])
    unlabelled.add([0, 1], None, probs[:2])
    result = unlabelled.result()
    assert (result["top1"], result["top5"], result["confusion"], result["per_class"]) == (None, None, [], [])
    assert result["predicted_counts"] == [1, 1]
    assert result["top_per_class"] == {"a": [0, 1], "b": [1, 0]}


def test_memory_is_bounded_whatever_the_number_of_images():
    rng = np.random.default_rng(0)
    acc = MetricsAccumulator([str(i) for i in range(10)], mistakes=100, top_per_class=20)
    best_mistake = (-1.0, None)
    for start in range(0, 20_000, 500):
        probs = rng.dirichlet(np.ones(10), 500)
        true = rng.integers(0, 10, 500)
        acc.add(np.arange(start, start + 500), true, probs)
        wrong = np.flatnonzero(probs.argmax(1) != true)
        top = wrong[np.argmax(probs[wrong].max(1))]
        if probs[top].max() > best_mistake[0]:
            best_mistake = (probs[top].max(), start + top)
        assert acc._mistakes.rows.shape == (1, 100) and acc._top.rows.shape == (10, 20)
    result = acc.result()
    assert result["count"] == 20_000 and sum(map(sum, result["confusion"])) == 20_000
    assert len(result["mistakes"]) == 100 and result["mistakes"][0] == best_mistake[1]
    assert all(len(rows) == 20 for rows in result["top_per_class"].values())
