"""The dataset page's chart of its source images' sizes (width x height as
stored in the files), from the record index: a bar per size when there are
few distinct sizes, a 2D histogram otherwise."""
import pandas as pd
import plotly.express as px
import streamlit as st

from digits_engine import record_index

MAX_BARS = 24
TITLE = "Source image sizes"


@st.cache_data(max_entries=16, show_spinner=False)
def size_counts(job_dir: str, stamp: float) -> pd.DataFrame:
    """width, height, images: how many records came from sources of each size (`stamp`: when the index changed)."""
    frames = [record_index.read_columns(job_dir, split, ("width", "height")).to_pandas()
              for split in record_index.splits(job_dir)]
    if not frames:
        return pd.DataFrame(columns=["width", "height", "images"])
    sizes = pd.concat(frames, ignore_index=True)
    return sizes.groupby(["width", "height"]).size().reset_index(name="images")


def sizes_chart(counts: pd.DataFrame):
    if len(counts) <= MAX_BARS:
        bars = counts.assign(size=counts["width"].astype(str) + " × " + counts["height"].astype(str))
        fig = px.bar(bars.sort_values("images", ascending=False), x="size", y="images", title=TITLE)
        fig.update_xaxes(type="category", title="width × height (pixels)")
    else:
        fig = px.density_heatmap(counts, x="width", y="height", z="images", histfunc="sum", title=TITLE,
                                 nbinsx=40, nbinsy=40)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10))
    return fig
