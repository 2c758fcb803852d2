"""Shared fixtures: a private jobs directory per test and tiny image folders.

Workers are real detached processes. A test that fails halfway must not leave
one running (it would hold a CPU for the rest of the session), so `jobs_dir`
stops every worker still alive in its directory when the test ends.
"""
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest_plugins = ["s3_server"]  # the session's real S3 server (SeaweedFS on 127.0.0.1)

CLASSES = ("circle", "square", "triangle")
COLOURS = {"circle": (220, 40, 40), "square": (40, 200, 40), "triangle": (40, 60, 230)}


def make_images(root: Path, per_class: int = 12, size: int = 16, classes=CLASSES, seed: int = 0) -> Path:
    """root/<class>/<n>.png: each class a noisy image of its own colour (so a model can learn it)."""
    rng = np.random.default_rng(seed)
    for name in classes:
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        base = np.array(COLOURS.get(name, (128, 128, 128)), np.int16)
        for i in range(per_class):
            noise = rng.integers(-30, 30, (size, size, 3), dtype=np.int16)
            pixels = np.clip(base + noise, 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture(autouse=True)
def main_module_restored():
    """Streamlit's AppTest leaves its script as sys.modules["__main__"]; a later test's spawn pool
    would then re-run that script in every child process (and hang). Put the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def jobs_dir(tmp_path, monkeypatch):
    """DIGITS_JOBS_DIR for this test only, with the scheduling settings at their defaults."""
    path = tmp_path / "jobs"
    path.mkdir()
    monkeypatch.setenv("DIGITS_JOBS_DIR", str(path))
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    for name in ("DIGITS_DATA_ROOTS", "DIGITS_TRAIN_SLOTS", "DIGITS_DATASET_SLOTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DIGITS_GPUS", "none")  # CPU training, the same on a GPU machine
    monkeypatch.setenv("DIGITS_OFFLINE", "1")  # no test probes the internet or downloads weights
    yield path
    stop_workers(path)


@pytest.fixture
def image_folder(tmp_path) -> Path:
    """3 classes x 12 PNG images of 16x16."""
    return make_images(tmp_path / "images")


def stop_workers(root: Path, timeout: float = 10.0) -> None:
    """Kill whatever worker still runs in `root` (what a failed test left behind)."""
    from digits_engine import liveness

    job_dirs = [d for d in root.iterdir() if (d / "job.json").exists()]
    for d in job_dirs:
        (d / "abort").touch()  # a worker that is only starting stops by itself
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [d for d in job_dirs if liveness.lock_is_held(d / "lock")]
        if not alive:
            return
        for d in alive:
            try:
                pid = json.loads((d / "status.json").read_text()).get("pid")
            except (OSError, ValueError):
                pid = None
            if pid:
                try:
                    os.killpg(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        time.sleep(0.2)


def fake_nvidia_smi(tmp_path: Path, monkeypatch, output: str) -> None:
    """An nvidia-smi first on PATH that prints `output` (with DIGITS_GPUS unset, the GPUs are detected)."""
    import stat
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\nprintf '{output}'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.delenv("DIGITS_GPUS", raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
