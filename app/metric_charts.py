"""Plotly charts of whatever metrics a job writes: every key of
progress.jsonl becomes a series, grouped by the name after the split prefix
("train/loss" and "val/loss" share the Loss chart; a detection model's
"val/AP_<class>" share one per-class AP chart)."""
import pandas as pd
import plotly.graph_objects as go

TITLES = {"loss": "Loss", "accuracy": "Accuracy", "mean_iou": "Mean IoU", "pixel_accuracy": "Pixel accuracy",
          "mAP": "mAP@0.5 (validation)", "AP": "AP@0.5 per class (validation)", "lr": "Learning rate", "images_per_second": "Training speed (images/s)",
          "epoch_seconds": "Epoch time (s)"}
ORDER = ("loss", "accuracy", "mean_iou", "pixel_accuracy", "mAP", "AP", "lr", "images_per_second", "epoch_seconds")


def metric_groups(records: list[dict]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for record in records:
        for key in record:
            if key == "epoch":
                continue
            name = key.rsplit("/", 1)[-1]
            group = groups.setdefault("AP" if name.startswith("AP_") else name, [])
            if key not in group:
                group.append(key)
    return dict(sorted(groups.items(), key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER), kv[0])))


def figure(frame: pd.DataFrame, keys: list[str], title: str) -> go.Figure:
    fig = go.Figure()
    for key in sorted(keys):
        series = frame[["epoch", key]].dropna()
        mode = "lines+markers" if key.startswith("val/") or len(series) == 1 else "lines"  # one point: a dot
        fig.add_trace(go.Scatter(x=series["epoch"], y=series[key], name=key, mode=mode))
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="epoch",
                      legend=dict(orientation="h", y=-0.25), hovermode="x unified")
    fig.update_yaxes(rangemode="tozero")
    return fig


def figures(records: list[dict]) -> list[tuple[str, go.Figure]]:
    """(group, figure) for each metric group, loss first."""
    if not records:
        return []
    frame = pd.DataFrame.from_records(records)
    if "epoch" not in frame:
        return []
    return [(group, figure(frame, keys, TITLES.get(group, group.replace("_", " ").capitalize())))
            for group, keys in metric_groups(records).items()]
