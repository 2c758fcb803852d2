"""The dataset page's health report: what the health check found (duplicates
within and across splits, small classes, mixed grayscale and colour sources,
EXIF-rotated photos), the list of issues one row per file, and its CSV."""
import os

import pandas as pd
import streamlit as st

from digits_engine import dataset_health
from digits_engine.job_store import Job

KEY = "health"


@st.cache_data(max_entries=16, show_spinner=False)
def _report(job_dir: str, stamp: float, stats: dict, threshold: int) -> tuple[dict, pd.DataFrame]:
    """Summary and issues; `stamp` (stats.json's mtime) makes a rebuilt dataset's report fresh."""
    return dataset_health.report(job_dir, stats, threshold)


def findings(summary: dict) -> list[str]:
    """One markdown line per kind of issue, found or not."""
    lines = []
    dups, leaks = summary["duplicates"], summary["cross_split_duplicates"]
    lines.append(f":orange[**{dups}** image(s) with the same pixels as another of their split]" if dups
                 else "No exact duplicate within a split.")
    lines.append(f":red[**{leaks}** val/test image(s) identical to an image of an earlier split: "
                 "their results would be inflated]" if leaks else "No image shared between splits.")
    below = summary["classes_below_threshold"]
    lines.append(f":orange[**{len(below)}** class(es) with fewer than {summary['threshold']} training images: "
                 + ", ".join(f"{c['class']} ({c['train']})" for c in below) + "]" if below
                 else f"Every class has at least {summary['threshold']} training images.")
    modes = ", ".join(f"{n} {mode}" for mode, n in summary["modes"].items())
    lines.append(f":orange[Grayscale and colour sources are mixed: {modes}]" if summary["mixed_modes"]
                 else f"Sources: {modes or 'none'}.")
    rotated = summary["exif_rotated"]
    lines.append(f"**{rotated}** photo(s) turned upright as their EXIF orientation says." if rotated
                 else "No EXIF-rotated photo.")
    return lines


def health_ui(job: Job, stats: dict) -> None:
    threshold = st.number_input("Flag classes with fewer training images than", min_value=1, value=dataset_health.DEFAULT_THRESHOLD,
                                step=1,
                                key=f"{KEY}.threshold")
    stamp = os.path.getmtime(job.artifact("stats.json"))
    summary, issues = _report(str(job.dir), stamp, stats, int(threshold))
    st.markdown("\n".join(f"- {line}" for line in findings(summary)))
    if issues.empty:
        st.success("No issue found.")
        return
    st.dataframe(issues, hide_index=True, width="stretch")
    st.download_button(f"Download the {len(issues)} issue(s) as CSV", issues.to_csv(index=False),
                       file_name=f"{job.id}-health.csv", mime="text/csv", key=f"{KEY}.csv",
                       icon=":material/download:")
