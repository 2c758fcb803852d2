"""Classification view: the image and its top-k classes as a bar chart.

    view = Visualization(labels=["cat", "dog", "fox"], top=2)
    data = view.process_data("img-1", image, [0.1, 0.7, 0.2], ground_truth=1)
    # {"image": HxWx3 uint8, "predictions": [{"label": "dog", "probability": 0.7},
    #  {"label": "fox", "probability": 0.2}], "ground_truth": "dog", "correct": True, ...}
    view.render(data, st)

The output may be probabilities or logits: scores that are not a probability
distribution (a value outside 0..1, or a sum away from 1) go through a softmax.
"""
import numpy as np

from ...fields import Field, validate
from ..interfaces import ViewPlugin
from . import as_array, as_rgb_image, shape_text, widget_key

VIEW_ID = "image-classification"


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max())
    return shifted / shifted.sum()


def as_probabilities(output_data) -> np.ndarray:
    """The model's 1-D output (or a batch of one) as probabilities, or ValueError."""
    scores = as_array(output_data, "model output").astype(np.float64)
    if scores.ndim == 2 and scores.shape[0] == 1:
        scores = scores[0]
    if scores.ndim != 1 or scores.size == 0:
        raise ValueError(f"The model output has shape {shape_text(scores.shape)}; the classification view "
                         "expects one score per class (shape K, or 1xK).")
    if not np.isfinite(scores).all():
        raise ValueError("The model output contains NaN or infinite scores: the model has diverged "
                         "(try a lower learning rate).")
    if scores.min() >= 0 and scores.max() <= 1 and abs(scores.sum() - 1) <= 1e-3:
        return scores
    return softmax(scores)


class Visualization(ViewPlugin):
    """Config: `labels` (class names, index = class id) and `top` (how many classes to show, default 5)."""

    def __init__(self, **config):
        super().__init__(**config)
        self.labels = [str(name) for name in (config.get("labels") or [])]
        self.top = validate(self.config_fields(), {"top": config.get("top")})["top"]

    @staticmethod
    def get_id() -> str:
        return VIEW_ID

    @staticmethod
    def get_title() -> str:
        return "Classification"

    @staticmethod
    def tasks() -> tuple[str, ...]:
        return ("classification",)

    @staticmethod
    def config_fields() -> list[Field]:
        return [Field("top", "Classes shown", kind="int", default=5, minimum=1,
                      help="How many of the most likely classes the chart lists.")]

    def label(self, class_id: int) -> str:
        return self.labels[class_id] if class_id < len(self.labels) else f"class {class_id}"

    def ground_truth_label(self, ground_truth) -> str | None:
        if ground_truth is None:
            return None
        if isinstance(ground_truth, str):
            return ground_truth
        value = np.asarray(ground_truth)
        if value.size != 1 or not np.issubdtype(value.dtype, np.number) or value.reshape(()) != int(value.reshape(())):
            raise ValueError(f"The ground truth must be a class id or a label name; got {ground_truth!r}.")
        class_id = int(value.reshape(()))
        if class_id < 0 or (self.labels and class_id >= len(self.labels)):
            raise ValueError(f"The ground truth class id {class_id} is not a class of this model "
                             f"(it has {len(self.labels)} classes, ids 0 to {len(self.labels) - 1}).")
        return self.label(class_id)

    def process_data(self, input_id, input_data, output_data, ground_truth=None) -> dict:
        image = as_rgb_image(input_data)
        probabilities = as_probabilities(output_data)
        if self.labels and len(self.labels) != probabilities.size:
            raise ValueError(f"The model output has shape {shape_text(probabilities.shape)} (one score per class) "
                             f"but the dataset has {len(self.labels)} classes: expected shape {len(self.labels)}. "
                             "Was the model trained on another dataset?")
        order = np.argsort(-probabilities, kind="stable")[: self.top]
        predictions = [{"label": self.label(int(i)), "probability": float(probabilities[i])} for i in order]
        truth = self.ground_truth_label(ground_truth)
        return {
            "input_id": input_id,
            "image": image,
            "predictions": predictions,
            "ground_truth": truth,
            "correct": None if truth is None else predictions[0]["label"] == truth,
        }

    def render(self, data, st) -> None:
        import plotly.graph_objects as go

        predictions = data["predictions"]
        picture, chart = st.columns([1, 3])
        picture.image(data["image"], caption=str(data["input_id"]), width=160)
        if data.get("ground_truth") is not None:
            if data["correct"]:
                picture.markdown(f":green[**✓ correct**] (ground truth: {data['ground_truth']})")
            else:
                picture.markdown(f":red[**✗ wrong**] (ground truth: {data['ground_truth']})")
        labels = [p["label"] for p in predictions]
        values = [p["probability"] for p in predictions]
        colors = ["#2e7d32" if label == data.get("ground_truth") else "#1f77b4" for label in labels]
        fig = go.Figure(go.Bar(x=values, y=labels, orientation="h", marker_color=colors,
                               text=[f"{v:.1%}" for v in values], textposition="auto"))
        best = predictions[0]
        fig.update_layout(title=f"Top {len(predictions)}: {best['label']} ({best['probability']:.1%})",
                          height=80 + 40 * len(predictions), margin=dict(l=10, r=10, t=40, b=10),
                          xaxis=dict(range=[0, 1], tickformat=".0%"), yaxis=dict(autorange="reversed"))
        chart.plotly_chart(fig, key=widget_key(VIEW_ID, "chart", data["input_id"]), width="stretch")
