"""The confusion matrix as a plotly heatmap whose cells can be clicked.

Streamlit reports no selection for clicks on a heatmap trace (streamlit#8760,
#15042), so each cell also carries an invisible square marker of a scatter
trace on top: a click selects that marker, and `clicked_cell` reads which
(true, predicted) pair it stands for.
"""
import numpy as np
import plotly.graph_objects as go

CELL_PX = 72
MARGIN_PX = 140  # room for the class names on the axes


def size_px(classes: int) -> int:
    return MARGIN_PX + CELL_PX * max(classes, 2)


def figure(confusion: list[list[int]], labels: list[str]) -> go.Figure:
    counts = np.asarray(confusion, dtype=np.int64)
    row_share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = go.Figure(go.Heatmap(z=row_share, x=labels, y=labels, text=counts, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=1, hoverinfo="skip",
                               colorbar={"title": "share of<br>the row", "tickformat": ".0%"}))
    true_of = [t for t in labels for _ in labels]
    predicted_of = [p for _ in labels for p in labels]
    fig.add_trace(go.Scatter(
        x=predicted_of, y=true_of, mode="markers", showlegend=False,
        marker={"symbol": "square", "size": CELL_PX - 4, "opacity": 0},
        customdata=counts.reshape(-1), hovertemplate="true %{y}, predicted %{x}: %{customdata} images"
                                                     "<extra>click to see them</extra>"))
    side = size_px(len(labels))
    fig.update_layout(width=side + 80, height=side, margin={"l": 20, "r": 20, "t": 30, "b": 20},
                      xaxis={"title": "Predicted", "side": "top", "type": "category"},
                      yaxis={"title": "True", "autorange": "reversed", "type": "category"},
                      clickmode="event+select", dragmode=False)
    return fig


def clicked_cell(event) -> tuple[str, str] | None:
    """(true label, predicted label) of the clicked cell, from st.plotly_chart's selection state."""
    points = ((event or {}).get("selection") or {}).get("points") or []
    if not points:
        return None
    return str(points[0]["y"]), str(points[0]["x"])
