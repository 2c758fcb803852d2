"""The learning rate schedule drawn from the form's current values, redrawn on every edit."""
import plotly.graph_objects as go

from digits_engine import lr_policies
from digits_engine.fields import convert

LR_FIELDS = ("lr", "lr_policy", "lr_step_pct", "lr_gamma", "lr_power", "lr_multistep_values")


def schedule_figure(fields: list, raw: dict) -> tuple[go.Figure | None, str | None]:
    """(figure, None), or (None, what to fix first) when the schedule's fields are not valid yet.
    A comma list of rates (a sweep) draws one curve per rate."""
    wanted = [f for f in fields if f.name in LR_FIELDS and f.name != "lr"]
    values, errors = convert(wanted, raw)
    errors.update(lr_policies.check({**values, "lr": 0.01}))
    rates = [r.strip() for r in str(raw.get("lr") or "").split(",") if r.strip()]
    try:
        rates = [float(r) for r in rates] or [0.01]
    except ValueError:
        errors["lr"] = "the base learning rate is not a number"
    if errors:
        return None, "; ".join(errors.values())
    fig = go.Figure()
    for rate in rates:
        points = lr_policies.curve({**values, "lr": rate})
        fig.add_trace(go.Scatter(x=[p for p, _ in points], y=[r for _, r in points], mode="lines", name=f"lr {rate:g}"))
    fig.update_layout(title="Learning rate over training", height=260, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="% of training", yaxis_title="learning rate", showlegend=len(rates) > 1)
    fig.update_yaxes(rangemode="tozero")  # a fixed rate is a flat line at its value, not centred on an axis of 0
    return fig, None
