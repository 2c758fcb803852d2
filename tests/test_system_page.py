"""The System page in the real app (AppTest): versions, devices, the jobs directory's free space, slots in use
from real running jobs, the sign-in mode among the settings, and never a secret."""
import json
import os
import shutil
import subprocess
import sys
import time
from collections import namedtuple
from contextlib import redirect_stdout
from io import StringIO

from streamlit.testing.v1 import AppTest

from digits_engine import cli, job_actions
from digits_engine.job_store import JobStore

from test_pages import MAIN, PAGES, ROOT, assert_fine, open_page, texts

SECRET_PASSWORD = "team-password-5521"
AWS_SECRET = "aws-secret-KEY-8765"


def everything(at: AppTest) -> str:
    """The page's words and every table's cells."""
    tables = [frame.value.to_csv(index=False) for frame in at.dataframe]
    metrics = [f"{m.label}: {m.value}" for m in at.metric]
    return "\n".join([texts(at), *tables, *metrics])


def settings_of(at: AppTest) -> dict:
    return dict(at.dataframe[0].value.itertuples(index=False))


def engine(*args) -> dict:
    with redirect_stdout(StringIO()) as out:
        assert cli.main([str(a) for a in args] + ["--json"]) == 0
    return json.loads(out.getvalue())


def test_versions_devices_space_and_sign_in_off(jobs_dir):
    at = open_page("system")
    assert_fine(at)
    text = everything(at)
    for package in ("python", "streamlit", "tensorflow", "keras", "numpy", "lmdb", "plotly", "pillow", "boto3",
                    "pydicom"):
        assert f"\n{package}," in text, package
    versions = dict(at.dataframe[-1].value.itertuples(index=False))
    assert versions["pillow"] != "not installed" and versions["tensorflow"] != "not installed"
    assert f"CPU only: {os.cpu_count()} cores." in text  # the fixture sets DIGITS_GPUS=none
    assert f"`{jobs_dir}`" in text and "GB free of" in text
    assert settings_of(at)["sign-in"] == "off"
    assert {"Training: 0 of 1", "Datasets: 0 of 2", "Inference: 0 of 2"} <= set(text.splitlines())


def test_gpus_are_listed(jobs_dir, monkeypatch):
    monkeypatch.setenv("DIGITS_GPUS", "0,1")
    text = everything(open_page("system"))
    assert "GPU 0: GPU 0" in text and "GPU 1: GPU 1" in text and "CPU only" not in text
    assert "Training: 0 of 2" in text


def test_little_free_space_is_warned(jobs_dir, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 12, 10 ** 12 - 4 * 10 ** 9, 4 * 10 ** 9))
    at = open_page("system")
    assert "Little space is left for jobs (4.0 GB, 0%)" in at.warning[0].value
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10 ** 12, 96 * 10 ** 10, 40 * 10 ** 9))
    assert "(40.0 GB, 4%)" in open_page("system").warning[0].value  # plenty of GB, but under 5 % of the disk
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(100 * 10 ** 9, 94 * 10 ** 9, 6 * 10 ** 9))
    assert not open_page("system").warning  # 6 GB and 6 %: fine


def test_slots_in_use_come_from_running_jobs(jobs_dir, image_folder):
    dataset = engine("dataset", "create", "--folder", image_folder, "--name", "d", "--wait")
    train = ["model", "train", "--dataset", dataset["id"], "--epochs", "200", "--batch-size", "8"]
    running = engine(*train, "--name", "long")
    waiting = engine(*train, "--name", "queued")
    try:
        assert JobStore().get(running["id"]).state.value == "Running"
        at = open_page("system")
        assert_fine(at)
        text = everything(at)
        assert "Training: 1 of 1" in text and "Datasets: 0 of 2" in text
        active = at.dataframe[2].value
        assert dict(zip(active["name"], active["status"])) == {"long": "Running", "queued": "Waiting"}
    finally:
        for job_id in (waiting["id"], running["id"]):
            job_actions.abort(JobStore().get(job_id))


def test_no_secret_is_shown(jobs_dir, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
    monkeypatch.setenv("DIGITS_S3_SECRET_KEY", AWS_SECRET)
    at = AppTest.from_file(MAIN, default_timeout=30)
    at.secrets["digits"] = {"password": SECRET_PASSWORD}
    at.run()
    at.text_input(key="auth.name").set_value("carol")
    at.text_input(key="auth.password").set_value(SECRET_PASSWORD)
    at.button(key="FormSubmitter:sign-in-Sign in").click().run()
    at.switch_page(PAGES["system"]).run()
    assert_fine(at)
    text = everything(at)
    assert settings_of(at)["sign-in"] == "password" and "DIGITS_JOBS_DIR" in text
    assert SECRET_PASSWORD not in text and AWS_SECRET not in text


def test_the_page_never_imports_tensorflow(jobs_dir):
    script = (f"import sys; from streamlit.testing.v1 import AppTest\n"
              f"at = AppTest.from_file({MAIN!r}, default_timeout=60); at.switch_page({PAGES['system']!r}); at.run()\n"
              "assert not at.exception, [e.value for e in at.exception]\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))")
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
    assert time.monotonic() - started < 60
