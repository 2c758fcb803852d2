"""One model: live progress and charts while it trains, then classify an image."""
import math

import streamlit as st

from digits_engine.job_store import JobStore
from digits_engine import job_actions, snapshots
from digits_engine.atomic_json import read_json
from digits_engine.errors import DigitsError

import auth
import classify_many_widget
import classify_widget
import job_widgets
import metric_charts
import model_download
import plugin_inference_widget

job, summary, active = job_widgets.page_job("model", "Models")
if summary.get("dataset") and JobStore().exists(summary["dataset"]):
    dataset = JobStore().get(summary["dataset"])
    st.page_link("../pages/dataset.py", label=f"Dataset: {dataset.name}", icon=":material/photo_library:",
                 query_params={"job": dataset.id})
if summary.get("group"):
    st.page_link("../pages/compare.py", label=f"Compare group {summary['group']}", icon=":material/compare_arrows:",
                 query_params={"group": summary["group"]})


def epoch_text(current: dict) -> str:
    """' · epoch 4 of 5' while the 4th epoch runs."""
    done = (current.get("metrics") or {}).get("epoch")
    total = current["params"]["epochs"]
    if done is None:
        return f" · {total} epochs"
    return f" · epoch {min(math.floor(done) + 1, total)} of {total}"


def charts(records: list[dict]) -> None:
    figures = metric_charts.figures(records)
    if not figures:
        st.caption("Charts appear after the first training batches.")
        return
    for row in range(0, len(figures), 2):
        for col, (group, fig) in zip(st.columns(2), figures[row:row + 2]):
            col.plotly_chart(fig, key=f"chart-{group}", width="stretch")


if (epoch := job_actions.resumable_epoch(job)) is not None and epoch < summary["params"]["epochs"]:
    refused = job_widgets.owner_only(summary)
    if st.button(f"Resume from epoch {epoch}", icon=":material/resume:", key="resume", type="primary",
                 disabled=bool(refused), help=refused or "Continue from the last epoch snapshot, with the "
                                                         "optimizer's state, to the epochs asked for."):
        try:
            job_actions.resume(job, by=auth.current_actor())
            st.rerun()
        except DigitsError as exc:
            st.error(str(exc))


@st.fragment(run_every=2 if active else None)
def live() -> None:
    current = job_widgets.live_status(job, active, epoch_text)
    metrics = current.get("metrics") or {}
    if current.get("best") is not None:
        name = current["best_metric"].split("/")[-1].replace("_", " ").replace("iou", "IoU")
        st.markdown(f"**Best val {name}:** {current['best']:.2%} · **last val loss:** "
                    f"{metrics.get('val/loss', float('nan')):.4f}")
    if metrics.get("time/epoch_seconds") is not None:
        speed = metrics.get("time/images_per_second")
        st.caption(f"Last epoch: {metrics['time/epoch_seconds']:.1f} s" + (f", {speed:,.0f} images/s" if speed else ""))
    charts(job.metrics())


if job.params.get("network") == "imported":
    st.caption(f"Imported from {job.params.get('imported_from')}: it has no training curves; classify with it, "
               "or fine-tune it (New model, network \"Previous network\").")
else:
    live()
if snapshots.latest(job) is not None:
    if not plugin_inference_widget.plugin_inference_ui(job):
        classify_widget.classify_ui(job)
        classify_many_widget.classify_many_ui(job)
    model_download.download_ui(job)
elif not active:
    st.info("This model has no snapshot to classify with: it stopped before finishing an epoch.")
if best := read_json(job.dir / "snapshots" / "best.json"):
    st.caption(f"Best snapshot: epoch {best['epoch']} ({best['metric']} {best['value']:.4f}), kept as best.keras")
if (job.dir / "tensorboard").exists():
    st.caption(f"TensorBoard: `tensorboard --logdir {job.dir / 'tensorboard'}`")
with st.expander("Settings"):
    st.json(summary["params"], expanded=True)
