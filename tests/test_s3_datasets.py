"""Image classification datasets read from S3 (issue 3), against a real S3 server.

The server is the session's SeaweedFS on 127.0.0.1 (tests/s3_server.py); each test
uploads tiny PNGs to a bucket of its own and builds datasets with real worker
processes, through the CLI and through the "Use S3" tab of the app (AppTest).
Every wait on a job is bounded (job_actions.wait with a timeout, or the CLI's
--wait under this module's pytest timeout).
"""
import json
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import make_images

from digits_engine import cli, credentials, image_records, job_actions, lmdb_store, model_spec
from digits_engine.job_state import JobState
from digits_engine.job_store import Job, JobStore
from digits_engine.tools import upload_s3_data

pytestmark = pytest.mark.timeout(300)  # bounds the CLI's --wait too

CLASSES = ("circle", "square", "triangle")
PER_CLASS = 12
DATASET_OUTPUTS = ("train", "val", "test", "labels.txt", "mean.png", "mean.npy", "stats.json")
JOB_TIMEOUT = 120
SECRET_FORM_KEY = "new_dataset.s3_secret_key"
S3_SUBMIT = "FormSubmitter:new_dataset_s3-Create"


# --------------------------------------------------------------------------- helpers

def new_bucket() -> str:
    return f"digits-{uuid.uuid4().hex[:12]}"


def write_config(path: Path, server, bucket: str, prefix: str = "mnist", access_key: str | None = None,
                 secret_key: str | None = None, endpoint: str | None = None) -> Path:
    """An upload_config.cfg ([S3 Config]) for the server, or with other keys/endpoint to test refusals."""
    path.write_text(f"[S3 Config]\nendpoint = {endpoint or server.endpoint}\n"
                    f"accesskey = {access_key or server.access_key}\n"
                    f"secretkey = {secret_key or server.secret_key}\nbucket = {bucket}\nprefix = {prefix}\n")
    return path


def upload(root: Path, cfg: Path, workers: int = 8) -> None:
    """upload_s3_data ROOT --config CFG: ROOT/train/<class>/* lands at <prefix>/train/<class>/*."""
    assert upload_s3_data.main([str(root), "--config", str(cfg), "--no-progress", "--workers", str(workers)]) == 0


@pytest.fixture
def shapes(tmp_path, s3_server, capsys):
    """A local DIGITS-layout folder (train/<class>/ 12 PNGs of 16x16 x 3 classes) uploaded to a fresh
    bucket under the prefix "mnist"; the config file (with the keys) lies outside the jobs folder."""
    root = tmp_path / "data"
    make_images(root / "train", per_class=PER_CLASS, size=16, classes=CLASSES)
    bucket = new_bucket()
    cfg = write_config(tmp_path / "upload.cfg", s3_server, bucket)
    upload(root, cfg)
    capsys.readouterr()
    return SimpleNamespace(root=root, bucket=bucket, cfg=cfg, endpoint=s3_server.endpoint)


def s3_args(endpoint: str, bucket: str, path: str = "mnist/train/", name: str = "s3", *extra) -> list[str]:
    return ["dataset", "create", "--s3-endpoint", endpoint, "--s3-bucket", bucket, "--s3-path", path,
            "--name", name, *extra]


def run_cli(argv: list[str], capsys) -> tuple[int, dict, str]:
    """(exit code, the --json output, stderr)."""
    code = cli.main([*argv, "--json"])
    captured = capsys.readouterr()
    return code, json.loads(captured.out), captured.err


def submit(argv: list[str], capsys, jobs_dir: Path, timeout: float = JOB_TIMEOUT) -> tuple[Job, dict, str]:
    """Submit with the CLI (no --wait), then wait, bounded, for the job to end; (job, its --json, stdout)."""
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    job = JobStore(jobs_dir).get(out["id"])
    state = job_actions.wait(job, timeout=timeout)
    assert not state.is_active, f"job {job.id} still {state} after {timeout} s; log:\n{job.log_tail()}"
    return job, out, json.dumps(out)


def assert_done(job: Job) -> None:
    assert job.state is JobState.DONE, f"{job.state}: {job.status().get('error')}\nlog:\n{job.log_tail()}"


def split_records(job_dir: Path) -> dict[str, list[tuple[int, bytes, tuple]]]:
    """{split: sorted [(label, decoded pixel bytes, shape)]} read from the job's LMDBs."""
    out = {}
    for split in ("train", "val", "test"):
        path = job_dir / split
        if not path.is_dir():
            continue
        records = lmdb_store.read_range(path, 0, lmdb_store.count(path))
        decoded = [image_records.read_record(r) for r in records]
        out[split] = sorted((int(label), pixels.tobytes(), pixels.shape) for pixels, label in decoded)
    return out


def files_holding(root: Path, needle: str) -> list[Path]:
    """Every file under `root` whose bytes contain `needle` (the LMDBs and images included)."""
    data = needle.encode()
    return [p for p in root.rglob("*") if p.is_file() and data in p.read_bytes()]


def assert_no_dataset_left(job_dir: Path) -> None:
    left = [name for name in DATASET_OUTPUTS if (job_dir / name).exists()]
    assert left == [], f"half-written outputs left in {job_dir}: {left}"


def stats(job: Job) -> dict:
    return json.loads(job.artifact("stats.json").read_text())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def no_aws_env(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


# --------------------------------------------------------------------------- the same dataset as from the folder

def test_dataset_from_s3_equals_the_dataset_from_the_same_folder(jobs_dir, shapes, s3_server, capsys, no_aws_env):
    code, s3_out, err = run_cli(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "s3", "--s3-config",
                                        str(shapes.cfg), "--seed", "0", "--wait"), capsys)
    assert code == 0, err
    assert s3_out["status"] == "Done", s3_out
    assert s3_out["params"]["source"] == "s3" and s3_out["params"]["s3_path"] == "mnist/train/"
    code, folder_out, err = run_cli(["dataset", "create", "--folder", str(shapes.root / "train"), "--name", "local",
                                     "--seed", "0", "--wait"], capsys)
    assert code == 0 and folder_out["status"] == "Done", err
    s3_job, folder_job = JobStore(jobs_dir).get(s3_out["id"]), JobStore(jobs_dir).get(folder_out["id"])

    assert (s3_job.dir / "labels.txt").read_text() == (folder_job.dir / "labels.txt").read_text() \
        == "".join(f"{c}\n" for c in CLASSES)
    s3_stats, folder_stats = stats(s3_job), stats(folder_job)
    for key in ("labels", "counts", "totals", "image", "skipped_files", "skipped_classes", "pixel_mean", "pixel_std"):
        assert s3_stats[key] == folder_stats[key], key
    assert s3_stats["totals"] == {"train": 27, "val": 9}  # 25% of 12 per class held out
    assert (s3_job.dir / "mean.png").read_bytes() == (folder_job.dir / "mean.png").read_bytes()

    # keys and absolute paths sort alike within a class, so the seeded split picks the same images
    s3_records, folder_records = split_records(s3_job.dir), split_records(folder_job.dir)
    assert set(s3_records) == set(folder_records) == {"train", "val"}
    for split in s3_records:
        assert s3_records[split] == folder_records[split], split
    assert len({pixels for _, pixels, _ in s3_records["train"] + s3_records["val"]}) == len(CLASSES) * PER_CLASS
    assert s3_server.secret_key not in json.dumps(s3_out)


# --------------------------------------------------------------------------- where the keys come from

def test_keys_from_the_aws_environment_variables(jobs_dir, shapes, s3_server, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    code, out, err = run_cli(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "env keys", "--wait"), capsys)
    assert code == 0, err
    assert out["status"] == "Done", out
    assert out["params"]["s3_access_key"] == s3_server.access_key
    assert s3_server.secret_key not in json.dumps(out)
    assert files_holding(jobs_dir, s3_server.secret_key) == []


def test_folder_dataset_with_aws_keys_in_the_environment(jobs_dir, image_folder, s3_server, capsys, monkeypatch):
    """AWS_* variables set for other tools must not turn a --folder dataset into an S3 one."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    job, out, _ = submit(["dataset", "create", "--folder", str(image_folder), "--name", "local"], capsys, jobs_dir)
    assert_done(job)
    assert job.params["source"] == "folder" and "s3_access_key" not in job.params
    assert files_holding(jobs_dir, s3_server.secret_key) == []


def test_without_a_secret_key_the_cli_says_how_to_give_one(jobs_dir, shapes, s3_server, capsys, no_aws_env):
    code, out, err = run_cli(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "no keys",
                                     "--s3-access-key", s3_server.access_key), capsys)
    assert code == 2
    assert set(out["fields"]) == {"s3_secret_key"}
    message = out["fields"]["s3_secret_key"]
    assert "Secret Key" in message and "--s3-config" in message and "AWS_SECRET_ACCESS_KEY" in message
    assert "--s3-config" in err and "AWS_SECRET_ACCESS_KEY" in err
    assert "--s3-secret-key" not in err  # there is no such option: the secret never goes on a command line
    assert JobStore(jobs_dir).list() == []


def test_without_any_key_both_are_asked_for(jobs_dir, shapes, capsys, no_aws_env):
    code, out, err = run_cli(s3_args(shapes.endpoint, shapes.bucket), capsys)
    assert code == 2
    assert set(out["fields"]) == {"s3_access_key", "s3_secret_key"}
    assert "AWS_ACCESS_KEY_ID" in err and "AWS_SECRET_ACCESS_KEY" in err
    assert JobStore(jobs_dir).list() == []


def test_empty_path_is_refused_at_submit(jobs_dir, shapes, capsys, no_aws_env):
    for path in ("", "/", " "):
        code, out, err = run_cli(s3_args(shapes.endpoint, shapes.bucket, path, "no path", "--s3-config",
                                         str(shapes.cfg)), capsys)
        assert code == 2, path
        assert set(out["fields"]) == {"s3_path"}, (path, out)
        assert "--s3-path" in err
    assert JobStore(jobs_dir).list() == []


# --------------------------------------------------------------------------- the secret stays out of every file

def test_the_secret_never_lands_in_the_job_folder(jobs_dir, shapes, s3_server, capsys, no_aws_env, tmp_path):
    done, done_out, _ = submit(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "fine", "--s3-config",
                                       str(shapes.cfg)), capsys, jobs_dir)
    assert_done(done)
    failed, failed_out, _ = submit(s3_args(shapes.endpoint, shapes.bucket, "nothing/here/", "no classes",
                                           "--s3-config", str(shapes.cfg)), capsys, jobs_dir)
    assert failed.state is JobState.ERROR
    wrong_secret = "Wrong-" + uuid.uuid4().hex
    bad_cfg = write_config(tmp_path / "bad.cfg", s3_server, shapes.bucket, secret_key=wrong_secret)
    refused, refused_out, _ = submit(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "wrong secret",
                                             "--s3-config", str(bad_cfg)), capsys, jobs_dir)
    assert refused.state is JobState.ERROR

    for job, out in ((done, done_out), (failed, failed_out), (refused, refused_out)):
        assert not credentials.path_for(job).exists()
        assert "s3_secret_key" not in json.dumps(job.spec)
        assert job.params["s3_access_key"] == s3_server.access_key  # the access key is kept, by design
        for text in (json.dumps(out), json.dumps(job.status()), job.log_tail(10_000)):
            assert s3_server.secret_key not in text and wrong_secret not in text
    for secret in (s3_server.secret_key, wrong_secret):
        assert files_holding(jobs_dir, secret) == []


def test_keys_wait_for_the_worker_in_an_owner_only_file(jobs_dir, shapes, s3_server, monkeypatch):
    """Submitted, not yet started: the keys are in an owner-only file (0600) outside the jobs directory;
    the worker deletes it as it starts, and aborting a job that never started deletes it too."""
    from digits_engine import dataset_spec
    from digits_engine.scheduler import Scheduler

    raw = {"name": "held", "s3_endpoint": shapes.endpoint, "s3_bucket": shapes.bucket, "s3_path": "mnist/train/",
           "s3_access_key": s3_server.access_key, "s3_secret_key": s3_server.secret_key}
    store = JobStore(jobs_dir)
    with monkeypatch.context() as held:
        held.setattr(Scheduler, "schedule", lambda self: None)  # nothing starts: both jobs stay Waiting
        started, aborted = dataset_spec.create(dict(raw), store), dataset_spec.create({**raw, "name": "x"}, store)
    for job in (started, aborted):
        assert job.state is JobState.WAITING
        keys = credentials.path_for(job)
        assert keys.stat().st_mode & 0o777 == 0o600 and keys.parent.stat().st_mode & 0o777 == 0o700
        assert jobs_dir not in keys.parents and files_holding(jobs_dir, s3_server.secret_key) == []
        assert json.loads(keys.read_text()) == {"s3_secret_key": s3_server.secret_key}
        assert s3_server.secret_key not in job.spec_path.read_text()

    job_actions.abort(aborted, store)
    assert aborted.state is JobState.ABORTED and not credentials.path_for(aborted).exists()
    Scheduler(store).schedule()
    assert job_actions.wait(started, timeout=JOB_TIMEOUT) is JobState.DONE, started.log_tail()
    assert not credentials.path_for(started).exists()
    assert files_holding(jobs_dir, s3_server.secret_key) == []


# --------------------------------------------------------------------------- no cap on the listing

def test_more_than_1000_keys_in_one_class(jobs_dir, s3_server, tmp_path, capsys, no_aws_env):
    """S3 lists 1,000 keys a page (DIGITS capped each class at 100): every page is read."""
    big, small = 1005, 4
    png = (make_images(tmp_path / "one", per_class=1, size=4, classes=("x",)) / "x" / "000.png").read_bytes()
    bucket = new_bucket()
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    keys = [f"many/big/{i:04d}.png" for i in range(big)] + [f"many/small/{i}.png" for i in range(small)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda key: client.put_object(Bucket=bucket, Key=key, Body=png), keys))
    cfg = write_config(tmp_path / "upload.cfg", s3_server, bucket)

    job, _, _ = submit(s3_args(s3_server.endpoint, bucket, "many/", "many", "--s3-config", str(cfg),
                               "--val-pct", "0", "--width", "4", "--height", "4"), capsys, jobs_dir, timeout=240)
    assert_done(job)
    result = stats(job)
    assert result["labels"] == ["big", "small"]
    assert result["counts"] == {"train": {"big": big, "small": small}}
    assert result["skipped_files"] == [] and result["warnings"] == []
    assert lmdb_store.count(job.dir / "train") == big + small


# --------------------------------------------------------------------------- errors

def _error_case(name: str, server, shapes, tmp_path: Path):
    """(CLI arguments, words the error must hold) for one way of getting S3 wrong."""
    cfg = str(shapes.cfg)
    if name == "wrong secret":
        bad = write_config(tmp_path / "bad.cfg", server, shapes.bucket, secret_key="Wrong-" + uuid.uuid4().hex)
        return s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", name, "--s3-config", str(bad)), \
            ["secret key", shapes.endpoint]
    if name == "unknown access key":
        bad = write_config(tmp_path / "bad.cfg", server, shapes.bucket, access_key="nobody-" + uuid.uuid4().hex[:8])
        return s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", name, "--s3-config", str(bad)), \
            ["does not know this access key", shapes.endpoint]
    if name == "missing bucket":
        missing = new_bucket()
        return s3_args(shapes.endpoint, missing, "mnist/train/", name, "--s3-config", cfg), \
            [f"no bucket '{missing}'", shapes.endpoint]
    if name == "closed port":
        endpoint = f"http://127.0.0.1:{closed_port()}"
        return s3_args(endpoint, shapes.bucket, "mnist/train/", name, "--s3-config", cfg), \
            ["Cannot reach the S3 endpoint", endpoint]
    if name == "no class folders":
        return s3_args(shapes.endpoint, shapes.bucket, "nothing/here/", name, "--s3-config", cfg), \
            ["Found no class folders", f"s3://{shapes.bucket}/nothing/here/", "<class>/<image>"]
    if name == "images without class folders":  # keys right under the path: no <class>/ level
        return s3_args(shapes.endpoint, shapes.bucket, "mnist/train/circle/", name, "--s3-config", cfg), \
            ["Found no class folders"]
    raise ValueError(name)


ERROR_CASES = ("wrong secret", "unknown access key", "missing bucket", "closed port", "no class folders",
               "images without class folders")


@pytest.mark.parametrize("case", ERROR_CASES)
def test_errors_are_specific_and_leave_no_dataset(case, jobs_dir, shapes, s3_server, capsys, tmp_path, no_aws_env):
    argv, words = _error_case(case, s3_server, shapes, tmp_path)
    began = time.monotonic()
    job, out, _ = submit(argv, capsys, jobs_dir)
    took = time.monotonic() - began
    assert job.state is JobState.ERROR, job.log_tail()
    error = job.status()["error"]
    for word in words:
        assert word in error, (word, error)
    assert "Traceback" not in error
    assert_no_dataset_left(job.dir)
    assert not (job.dir / "s3_copy").exists()
    if case == "closed port":
        assert took < 30, f"a closed port took {took:.1f} s to fail"
    assert files_holding(jobs_dir, s3_server.secret_key) == []


def test_non_images_and_corrupt_images_are_skipped_and_listed(jobs_dir, shapes, s3_server, capsys, no_aws_env):
    client = s3_server.client()
    client.put_object(Bucket=shapes.bucket, Key="mnist/train/circle/notes.txt", Body=b"not an image")
    client.put_object(Bucket=shapes.bucket, Key="mnist/train/square/broken.png", Body=b"text, not a PNG")
    client.put_object(Bucket=shapes.bucket, Key="mnist/train/square/", Body=b"")  # a "folder" marker
    for hidden in ("__MACOSX/circle/._000.png", ".git/config", "circle/.DS_Store", "square/.thumbs/x.png"):
        client.put_object(Bucket=shapes.bucket, Key=f"mnist/train/{hidden}", Body=b"left out silently")
    job, _, _ = submit(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "junk", "--s3-config",
                               str(shapes.cfg)), capsys, jobs_dir)
    assert_done(job)
    result = stats(job)
    reasons = {s["path"]: s["reason"] for s in result["skipped_files"]}
    assert set(reasons) == {"mnist/train/circle/notes.txt", "mnist/train/square/broken.png"}
    assert "not an image file (.txt)" in reasons["mnist/train/circle/notes.txt"]
    assert reasons["mnist/train/square/broken.png"]
    assert sum(result["totals"].values()) == len(CLASSES) * PER_CLASS  # every real image is in
    assert result["labels"] == sorted(CLASSES)  # no __MACOSX or .git class
    assert "skipped mnist/train/square/broken.png" in job.log_tail(10_000)


def test_nothing_readable_ends_error_without_a_dataset(jobs_dir, s3_server, tmp_path, capsys, no_aws_env):
    bucket = new_bucket()
    client = s3_server.client()
    client.create_bucket(Bucket=bucket)
    for key in ("p/a/1.png", "p/a/2.png", "p/b/1.png", "p/b/2.png"):
        client.put_object(Bucket=bucket, Key=key, Body=b"corrupt")
    cfg = write_config(tmp_path / "c.cfg", s3_server, bucket)
    job, _, _ = submit(s3_args(s3_server.endpoint, bucket, "p/", "corrupt", "--s3-config", str(cfg),
                               "--val-pct", "0"), capsys, jobs_dir)
    assert job.state is JobState.ERROR
    assert "No training image could be read" in job.status()["error"]
    assert f"s3://{bucket}/p/" in job.status()["error"]
    assert_no_dataset_left(job.dir)


# --------------------------------------------------------------------------- keep a local copy

def test_keep_a_local_copy(jobs_dir, shapes, capsys, no_aws_env):
    job, _, _ = submit(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "copied", "--s3-config",
                               str(shapes.cfg), "--s3-keep-copy"), capsys, jobs_dir)
    assert_done(job)
    assert job.params["s3_keep_copy"] is True
    copies = {p.relative_to(job.dir / "s3_copy").as_posix() for p in (job.dir / "s3_copy").rglob("*") if p.is_file()}
    assert copies == {f"mnist/train/{c}/{i:03d}.png" for c in CLASSES for i in range(PER_CLASS)}
    sample = "mnist/train/square/007.png"
    assert (job.dir / "s3_copy" / sample).read_bytes() == (shapes.root / "train/square/007.png").read_bytes()


def test_no_copy_by_default(jobs_dir, shapes, capsys, no_aws_env):
    job, _, _ = submit(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "plain", "--s3-config",
                               str(shapes.cfg)), capsys, jobs_dir)
    assert_done(job)
    assert not (job.dir / "s3_copy").exists()


# --------------------------------------------------------------------------- a model trains on it

def test_a_model_trains_on_an_s3_dataset(jobs_dir, shapes, capsys, no_aws_env):
    dataset, _, _ = submit(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "s3", "--s3-config",
                                   str(shapes.cfg)), capsys, jobs_dir)
    assert_done(dataset)
    model = model_spec.create({"dataset": dataset.id, "name": "on s3", "epochs": "1", "batch_size": "8"},
                              JobStore(jobs_dir))
    assert job_actions.wait(model, timeout=240) is JobState.DONE, model.log_tail()
    assert model.metrics()


# --------------------------------------------------------------------------- clone from the CLI

def test_cli_clone_asks_for_the_keys_again(jobs_dir, shapes, s3_server, capsys, no_aws_env):
    original, _, _ = submit(s3_args(shapes.endpoint, shapes.bucket, "mnist/train/", "s3", "--s3-config",
                                    str(shapes.cfg), "--seed", "3"), capsys, jobs_dir)
    assert_done(original)

    code, out, err = run_cli(["jobs", "clone", original.id], capsys)
    assert code == 2
    assert set(out["fields"]) == {"s3_secret_key"}
    assert "--s3-config" in err and "AWS_SECRET_ACCESS_KEY" in err
    assert len(JobStore(jobs_dir).list()) == 1

    code, out, err = run_cli(["jobs", "clone", original.id, "--s3-config", str(shapes.cfg), "--wait"], capsys)
    assert code == 0, err
    assert out["status"] == "Done" and out["name"] == "s3 (clone)", out
    clone = JobStore(jobs_dir).get(out["id"])
    assert clone.params == original.params
    assert split_records(clone.dir) == split_records(original.dir)
    assert files_holding(jobs_dir, s3_server.secret_key) == []
