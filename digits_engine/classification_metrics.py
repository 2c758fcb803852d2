"""Classification metrics over a stream of predictions: top-k accuracy, the
confusion matrix, per-class precision, recall and F1, the most confident
mistakes and the most confident images of each class.

`MetricsAccumulator` takes one batch at a time and keeps only counts and
fixed-size best-N tables, so its memory does not grow with the number of
images. Pure numpy (no TensorFlow): the UI may import it. Writing the results
is the inference job's; this module only computes them.
"""
import numpy as np


def confusion_matrix(true, pred, n: int) -> np.ndarray:
    """n x n counts: rows the true class, columns the predicted one."""
    true, pred = np.asarray(true, np.int64), np.asarray(pred, np.int64)
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def _ratio(top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """top / bottom, 0 where bottom is 0 (a class never predicted, or never present)."""
    return np.divide(top, bottom, out=np.zeros(len(top)), where=bottom > 0)


def per_class(confusion, labels=None) -> list[dict]:
    """{label, precision, recall, f1, support} per class of a confusion matrix (0, not NaN, when undefined)."""
    confusion = np.asarray(confusion, np.int64)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    precision = _ratio(hits, confusion.sum(axis=0).astype(np.float64))
    recall = _ratio(hits, support.astype(np.float64))
    f1 = _ratio(2 * precision * recall, precision + recall)
    labels = list(labels) if labels is not None else list(range(len(hits)))
    return [{"label": label, "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)]


def _hits_within(true: np.ndarray, probabilities: np.ndarray, k: int) -> np.ndarray:
    """Per row: is the true class among the k most probable? (A tie with the k-th counts as within;
    a true class the model does not know never is.)"""
    known = true < probabilities.shape[1]
    rows = np.arange(len(true))
    true_p = probabilities[rows, np.where(known, true, 0)]
    better = (probabilities > true_p[:, None]).sum(axis=1)
    return known & (better < k)


def top_k_accuracy(true, probabilities, k: int) -> float | None:
    """The fraction of rows whose true class is among the k most probable; None for no rows."""
    true, probabilities = np.asarray(true, np.int64), np.asarray(probabilities)
    if not len(true):
        return None
    return float(_hits_within(true, probabilities, k).mean())


class _BestN:
    """The n rows with the highest scores seen so far, in each of `tables` independent tables.

    Fixed-size arrays (tables x n) merged batch by batch: memory does not grow with the rows added.
    Ties go to the earlier row."""

    def __init__(self, tables: int, n: int):
        self.scores = np.full((tables, n), -np.inf)
        self.rows = np.full((tables, n), -1, np.int64)

    def add(self, scores: np.ndarray, rows: np.ndarray) -> None:
        """scores and rows: tables x m candidates (-inf scores are never kept)."""
        n = self.scores.shape[1]
        if n and (m := scores.shape[1]):
            if m > n:  # only a batch's own best n can enter
                keep = np.argpartition(-scores, n - 1, axis=1)[:, :n]
                scores, rows = np.take_along_axis(scores, keep, 1), np.take_along_axis(rows, keep, 1)
            scores = np.concatenate([self.scores, scores], axis=1)
            rows = np.concatenate([self.rows, rows], axis=1)
            order = np.lexsort((np.where(rows < 0, np.iinfo(np.int64).max, rows), -scores), axis=-1)[:, :n]
            self.scores, self.rows = np.take_along_axis(scores, order, 1), np.take_along_axis(rows, order, 1)

    def ranked(self, table: int) -> list[int]:
        """Row ids of one table, best first."""
        kept = np.isfinite(self.scores[table])
        return [int(r) for r in self.rows[table][kept]]


class MetricsAccumulator:
    """Streams predictions into the metrics of an inference job's results.json.

    Args:
        labels: the class names: the model's classes (the probability columns), then any class found
            only in the true labels (one the model cannot predict).
        mistakes: how many of the most confident mistakes to keep. Defaults to 100.
        top_per_class: how many images to keep per class, those given the highest probability of that
            class (DIGITS' "top N per category"). Defaults to 20.
        k: the k of top-k accuracy (reported as "top5"). Defaults to 5.

    Example:
        acc = MetricsAccumulator(["cat", "dog"])
        acc.add([0, 1], [0, 1], [[0.9, 0.1], [0.8, 0.2]])
        acc.result()["top1"]  # 0.5
    """

    def __init__(self, labels, mistakes: int = 100, top_per_class: int = 20, k: int = 5):
        self.labels, self.k = list(labels), k
        n = len(self.labels)
        self.confusion = np.zeros((n, n), np.int64)
        self.predicted = np.zeros(n, np.int64)
        self.count = self.labelled = self.hits = self.hits_k = 0
        self._mistakes = _BestN(1, mistakes)
        self._top = _BestN(n, top_per_class)

    def add(self, row_ids, true_labels, probabilities) -> None:
        """One batch: row ids, true class indices (None, or -1 for a row without a label), and the
        B x K class probabilities (K: the model's classes, the first K labels)."""
        rows = np.asarray(row_ids, np.int64)
        probabilities = np.asarray(probabilities, np.float64)
        classes = probabilities.shape[1]
        pred = probabilities.argmax(axis=1)
        self.count += len(rows)
        self.predicted += np.bincount(pred, minlength=len(self.labels))
        top_scores = np.full((len(self.labels), len(rows)), -np.inf)
        top_scores[:classes] = probabilities.T
        self._top.add(top_scores, np.broadcast_to(rows, top_scores.shape))
        if true_labels is None:
            return
        true = np.asarray(true_labels, np.int64)
        has = true >= 0
        true, pred, probabilities, rows = true[has], pred[has], probabilities[has], rows[has]
        self.labelled += len(true)
        self.confusion += confusion_matrix(true, pred, len(self.labels))
        self.hits += int((true == pred).sum())
        self.hits_k += int(_hits_within(true, probabilities, self.k).sum())
        wrong = true != pred
        confidence = probabilities[wrong, pred[wrong]]
        self._mistakes.add(confidence[None, :], rows[wrong][None, :])

    def result(self) -> dict:
        """count, labelled, top1, top5 (None without labels), labels, per_class and confusion (empty
        without labels), predicted_counts, mistakes (row ids, most confident first) and top_per_class."""
        labelled = self.labelled > 0
        return {
            "count": self.count, "labelled": self.labelled,
            "top1": self.hits / self.labelled if labelled else None,
            "top5": self.hits_k / self.labelled if labelled else None,
            "labels": self.labels,
            "per_class": per_class(self.confusion, self.labels) if labelled else [],
            "confusion": self.confusion.tolist() if labelled else [],
            "predicted_counts": self.predicted.tolist(),
            "mistakes": self._mistakes.ranked(0),
            "top_per_class": {label: self._top.ranked(i) for i, label in enumerate(self.labels)},
        }
