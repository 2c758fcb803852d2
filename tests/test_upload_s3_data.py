"""upload_s3_data against a real S3 server (SeaweedFS on 127.0.0.1, see s3_server.py)."""
import configparser
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from conftest import make_images
from s3_server import _loopback_only, listening_addresses

from digits_engine.tools import upload_s3_data
from digits_engine.s3_config import read_config
from digits_engine.tools.upload_s3_data import main

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "digits_engine" / "tools" / "upload_s3_data.py"


def new_bucket() -> str:
    return f"digits-{uuid.uuid4().hex[:12]}"


def write_config(path: Path, endpoint: str, access_key: str, secret_key: str, bucket: str,
                 prefix: str = "mnist") -> Path:
    path.write_text(f"[S3 Config]\nendpoint = {endpoint}\naccesskey = {access_key}\n"
                    f"secretkey = {secret_key}\nbucket = {bucket}\nprefix = {prefix}\n")
    return path


def server_config(server, tmp_path: Path, bucket: str | None = None, **kw) -> Path:
    return write_config(tmp_path / "upload.cfg", server.endpoint, server.access_key, server.secret_key,
                        bucket or new_bucket(), **kw)


@pytest.fixture
def dataset(tmp_path) -> Path:
    """A DIGITS folder: train/{cat,dog}/ 3 PNGs each (+1 nested), test/{cat,dog}/ 2 each, and non-images."""
    root = tmp_path / "data"
    make_images(root / "train", per_class=3, size=8, classes=("cat", "dog"))
    make_images(root / "test", per_class=2, size=8, classes=("cat", "dog"), seed=1)
    make_images(root / "train" / "dog" / "more", per_class=1, size=8, classes=("puppy",))
    (root / "train" / "cat" / "notes.txt").write_text("not an image")
    (root / "train" / "cat" / ".hidden.png").write_bytes(b"hidden")
    (root / "train" / "loose.png").write_bytes(b"not in a class folder")
    (root / "labels.txt").write_text("cat\ndog\n")
    return root


EXPECTED = {
    "train/cat/000.png", "train/cat/001.png", "train/cat/002.png",
    "train/dog/000.png", "train/dog/001.png", "train/dog/002.png", "train/dog/more/puppy/000.png",
    "test/cat/000.png", "test/cat/001.png", "test/dog/000.png", "test/dog/001.png",
}


def keys_and_sizes(client, bucket: str, prefix: str = "") -> dict[str, int]:
    sizes = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        sizes.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return sizes


def bucket_exists(client, bucket: str) -> bool:
    return any(b["Name"] == bucket for b in client.list_buckets()["Buckets"])


# ---------------------------------------------------------------- the server itself

def test_server_listens_on_loopback_only_and_refuses_other_keys(s3_server):
    import botocore.exceptions

    addresses = listening_addresses(s3_server.process.pid)
    assert {port for _, _, port in addresses} == set(s3_server.ports.values())
    assert {ip for _, ip, _ in addresses} == {"127.0.0.1"}
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        s3_server.client(access_key="someone-else", secret_key="x").list_buckets()
    assert caught.value.response["Error"]["Code"] == "InvalidAccessKeyId"


def test_the_address_check_sees_other_addresses():
    """A listener on ::1 (loopback, but not 127.0.0.1) is reported: the check would catch a wide bind."""
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
        try:
            s.bind(("::1", 0))
        except OSError:
            pytest.skip("no ::1 here")
        s.listen()
        port = s.getsockname()[1]
        found = listening_addresses(os.getpid())
    assert ("tcp6", "::1", port) in found
    assert _loopback_only(found) == [f"tcp6 ::1:{port}"]


# ---------------------------------------------------------------- against the server

def test_round_trip_creates_the_bucket_and_uploads_every_image(s3_server, dataset, tmp_path, capsys):
    bucket = new_bucket()
    cfg = server_config(s3_server, tmp_path, bucket)
    client = s3_server.client()
    assert not bucket_exists(client, bucket)

    assert main([str(dataset), "--config", str(cfg), "--no-progress"]) == 0

    out = capsys.readouterr().out
    assert f"uploaded {len(EXPECTED)}, skipped 0" in out
    assert f"Created bucket {bucket!r}" in out
    assert "training images path mnist/train/" in out
    assert s3_server.secret_key not in out and s3_server.access_key not in out
    assert bucket_exists(client, bucket)
    stored = keys_and_sizes(client, bucket)
    assert set(stored) == {f"mnist/{k}" for k in EXPECTED}
    for key in EXPECTED:
        assert stored[f"mnist/{key}"] == (dataset / key).stat().st_size
    obj = client.get_object(Bucket=bucket, Key="mnist/train/cat/001.png")
    assert obj["Body"].read() == (dataset / "train/cat/001.png").read_bytes()
    assert obj["ContentType"] == "image/png"


def test_second_run_uploads_only_what_is_missing_or_changed(s3_server, dataset, tmp_path, capsys):
    bucket = new_bucket()
    cfg = server_config(s3_server, tmp_path, bucket)
    assert main([str(dataset), "--config", str(cfg), "--no-progress"]) == 0
    capsys.readouterr()
    client = s3_server.client()

    assert main([str(dataset), "--config", str(cfg), "--no-progress"]) == 0
    assert f"uploaded 0, skipped {len(EXPECTED)}" in capsys.readouterr().out

    for key in ("mnist/train/cat/000.png", "mnist/test/dog/001.png", "mnist/train/dog/more/puppy/000.png"):
        client.delete_object(Bucket=bucket, Key=key)
    client.put_object(Bucket=bucket, Key="mnist/train/dog/002.png", Body=b"a different size")
    assert main([str(dataset), "--config", str(cfg), "--no-progress"]) == 0
    assert f"uploaded 4, skipped {len(EXPECTED) - 4}" in capsys.readouterr().out
    stored = keys_and_sizes(client, bucket)
    assert set(stored) == {f"mnist/{k}" for k in EXPECTED}
    assert stored["mnist/train/dog/002.png"] == (dataset / "train/dog/002.png").stat().st_size


def test_existing_keys_are_listed_past_1000(s3_server, tmp_path, capsys):
    """S3 lists 1,000 keys a page: the skip check must read every page."""
    root = tmp_path / "many"
    for i in range(1003):
        folder = root / "train" / ("a" if i % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:04d}.png").write_bytes(b"x")
    bucket = new_bucket()
    cfg = server_config(s3_server, tmp_path, bucket, prefix="")
    assert main([str(root), "--config", str(cfg), "--no-progress", "--workers", "10"]) == 0
    assert "uploaded 1003, skipped 0" in capsys.readouterr().out
    assert main([str(root), "--config", str(cfg), "--no-progress"]) == 0
    assert "uploaded 0, skipped 1003" in capsys.readouterr().out
    assert len(keys_and_sizes(s3_server.client(), bucket, "train/")) == 1003


def test_prefix_slashes_are_trimmed(s3_server, dataset, tmp_path, capsys):
    bucket = new_bucket()
    cfg = server_config(s3_server, tmp_path, bucket, prefix="/datasets/mnist/")
    assert main([str(dataset), "--config", str(cfg), "--no-progress"]) == 0
    assert set(keys_and_sizes(s3_server.client(), bucket)) == {f"datasets/mnist/{k}" for k in EXPECTED}


def test_runs_as_a_script_and_as_a_module(s3_server, dataset, tmp_path):
    bucket = new_bucket()
    cfg = server_config(s3_server, tmp_path, bucket)
    script = subprocess.run([sys.executable, str(SCRIPT), str(dataset), "--config", str(cfg)],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert script.returncode == 0, script.stderr
    assert f"uploaded {len(EXPECTED)}, skipped 0" in script.stdout
    module = subprocess.run([sys.executable, "-m", "digits_engine.tools.upload_s3_data", str(dataset),
                             "--config", str(cfg)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert module.returncode == 0, module.stderr
    assert f"uploaded 0, skipped {len(EXPECTED)}" in module.stdout
    for run in (script, module):
        assert s3_server.secret_key not in run.stdout + run.stderr


@pytest.mark.parametrize("which, words", [
    ("secret", ("secret key", "SignatureDoesNotMatch")),
    ("access", ("access key", "InvalidAccessKeyId")),
])
def test_wrong_keys_are_named_without_printing_them(s3_server, dataset, tmp_path, which, words):
    wrong = "WrongKey-" + uuid.uuid4().hex
    access, secret = (s3_server.access_key, wrong) if which == "secret" else (wrong, s3_server.secret_key)
    bucket = new_bucket()
    cfg = write_config(tmp_path / "bad.cfg", s3_server.endpoint, access, secret, bucket)
    run = subprocess.run([sys.executable, str(SCRIPT), str(dataset), "--config", str(cfg)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1
    for word in words:
        assert word in run.stderr
    for secret_text in (wrong, s3_server.secret_key, s3_server.access_key):
        assert secret_text not in run.stdout + run.stderr
    assert "Traceback" not in run.stderr
    assert not bucket_exists(s3_server.client(), bucket)


def test_a_port_that_is_not_s3_is_named(s3_server, dataset, tmp_path, capsys):
    """The filer's HTTP port answers, but not as S3 (a wrong port in the config)."""
    endpoint = f"http://127.0.0.1:{s3_server.ports['filer.port']}"
    cfg = write_config(tmp_path / "c.cfg", endpoint, s3_server.access_key, s3_server.secret_key, new_bucket())
    assert main([str(dataset), "--config", str(cfg), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "does not look like an S3 endpoint" in err and endpoint in err


def test_invalid_bucket_name(s3_server, dataset, tmp_path, capsys):
    cfg = server_config(s3_server, tmp_path, bucket="Not_A_Bucket")
    assert main([str(dataset), "--config", str(cfg), "--no-progress"]) == 1
    assert "'Not_A_Bucket' is not a valid bucket name" in capsys.readouterr().err


# ---------------------------------------------------------------- no server needed

def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_closed_port_fails_fast_with_a_clear_message(dataset, tmp_path, capsys):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    cfg = write_config(tmp_path / "c.cfg", endpoint, "AKIAEXAMPLE", "s3cr3t-value", "digits")
    began = time.monotonic()
    assert main([str(dataset), "--config", str(cfg), "--no-progress"]) == 1
    assert time.monotonic() - began < 5
    err = capsys.readouterr().err
    assert "Cannot reach the S3 endpoint" in err and endpoint in err
    assert "s3cr3t-value" not in err and "AKIAEXAMPLE" not in err


CONFIG_PROBLEMS = {
    "no section": ("[Other]\nendpoint = http://h:1\n", "has no [S3 Config] section"),
    "no header": ("endpoint = http://h:1\n", "section header"),
    "missing keys": ("[S3 Config]\nendpoint = http://h:1\naccesskey = a\nsecretkey = PLAINSECRET\n",
                     "lacks bucket, prefix"),
    "empty secret": ("[S3 Config]\nendpoint = http://h:1\naccesskey = a\nsecretkey =\nbucket = b\nprefix = p\n",
                     "secretkey must not be empty"),
    "not a url": ("[S3 Config]\nendpoint = h:1\naccesskey = a\nsecretkey = PLAINSECRET\nbucket = b\nprefix = p\n",
                  "is not a URL"),
    "bad line": ("[S3 Config]\nendpoint = http://h:1\nsecretkey PLAINSECRET\n", "cannot read line(s) 3"),
}


@pytest.mark.parametrize("name", CONFIG_PROBLEMS)
def test_config_problems_are_named(name, dataset, tmp_path, capsys):
    text, expected = CONFIG_PROBLEMS[name]
    cfg = tmp_path / "upload.cfg"
    cfg.write_text(text)
    assert main([str(dataset), "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert expected in err and str(cfg) in err
    assert "PLAINSECRET" not in err and "Traceback" not in err


def test_missing_config_file(dataset, tmp_path, capsys):
    missing = tmp_path / "nope.cfg"
    assert main([str(dataset), "--config", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"Config file {missing} not found" in err and "--config" in err


def test_shipped_config_has_the_guide_values_and_is_refused_as_is(dataset, capsys):
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(upload_s3_data.DEFAULT_CONFIG)
    assert dict(parser["S3 Config"]) == {
        "endpoint": "http://your-s3-endpoint.com:80", "accesskey": "0123456789abcde",
        "secretkey": "PrIclctP80KrMi6+UPO9ZYNrkg6ByFeFRR6484qL", "bucket": "digits", "prefix": "mnist"}
    assert main([str(dataset)]) == 1  # the default --config is the shipped file
    err = capsys.readouterr().err
    assert "still has the example endpoint" in err and "PrIclctP80" not in err


def test_secret_keys_are_read_raw(tmp_path):
    cfg = write_config(tmp_path / "c.cfg", "http://127.0.0.1:9000", "ak", "50%off+/x=", "bucket", prefix="")
    config = read_config(cfg)
    assert config.secret_key == "50%off+/x=" and config.key_prefix == ""
    assert "50%off" not in repr(config)


@pytest.mark.parametrize("make, expected", [
    (lambda root: None, "not found"),
    (lambda root: root.mkdir(), "has no train/ folder"),
    (lambda root: (root / "train" / "cat").mkdir(parents=True), "holds no images in class folders"),
])
def test_folder_problems_are_named(make, expected, tmp_path, capsys):
    root = tmp_path / "data"
    make(root)
    cfg = write_config(tmp_path / "c.cfg", f"http://127.0.0.1:{closed_port()}", "a", "s", "digits")
    assert main([str(root), "--config", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err


def test_collect_files_keeps_images_in_class_folders(dataset):
    files, ignored = upload_s3_data.collect_files(dataset)
    assert {rel for _, rel in files} == EXPECTED
    assert ignored == 2  # train/cat/notes.txt and train/loose.png (hidden files are not counted)
    with pytest.raises(upload_s3_data.UploadError):
        upload_s3_data.collect_files(dataset / "labels.txt")
