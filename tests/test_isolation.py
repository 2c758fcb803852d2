"""Isolation: every server path a person gives (forms and CLI) stays inside DIGITS_DATA_ROOTS after
resolving `..` and symlinks, lines of list files included; uploads are capped by DIGITS_UPLOAD_MAX_MB.
Each refusal names the allowed roots."""
import io
import os
from contextlib import redirect_stderr, redirect_stdout

import pytest

from digits_engine import (cli, dataset_spec, inference_spec, plugin_dataset_spec, pretrained_weights, server_paths,
                           uploads)
from digits_engine.fields import FormErrors
from digits_engine.model_import import ImportRefused, check_source

from conftest import make_images


@pytest.fixture
def world(jobs_dir, tmp_path, monkeypatch):
    """An allowed root with images, a secret folder outside it, and a link inside the root to the secret."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    make_images(allowed / "images", per_class=3)
    make_images(outside / "secret", per_class=3)
    (outside / "model.keras").write_bytes(b"not a model")
    (outside / "weights_notop.h5").write_bytes(b"h5")
    os.symlink(outside / "secret", allowed / "link")
    monkeypatch.setenv("DIGITS_DATA_ROOTS", str(allowed))
    return allowed, outside


def escapes(allowed, outside) -> dict:
    """The three ways out of the root: `..`, a symlink in the root, an absolute path elsewhere."""
    return {"dotdot": f"{allowed}/images/../../outside/secret", "symlink": str(allowed / "link"),
            "absolute": str(outside / "secret")}


def refused(message: str, allowed) -> bool:
    roots = f"outside the folders this server may read ({allowed.resolve()})"
    return roots in message and "DIGITS_DATA_ROOTS" in message


def run_cli(*args) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue() + err.getvalue()


def test_server_paths_refuse_every_escape_and_keep_the_root(world):
    allowed, outside = world
    for how, raw in escapes(allowed, outside).items():
        assert refused(server_paths.problem(raw), allowed), how
    assert server_paths.problem(str(allowed / "images")) is None
    gone = server_paths.problem(str(outside / "no-such-folder"))
    assert refused(gone, allowed) and "does not exist" not in gone  # nothing said of what exists outside


def test_dataset_folders_are_refused_outside_the_roots(world):
    allowed, outside = world
    for how, raw in escapes(allowed, outside).items():
        for field in ("folder", "val_folder"):
            raw_form = {"name": "d", "folder": str(allowed / "images"), field: raw}
            with pytest.raises(FormErrors) as caught:
                dataset_spec.check(raw_form)
            assert refused(caught.value.errors[field], allowed), (how, field)


def test_dataset_list_lines_outside_the_roots_are_refused_with_their_line(world):
    allowed, outside = world
    (allowed / "labels.txt").write_text("circle\nsquare\ntriangle\n")
    lines = ["images/circle/000.png 0", "../outside/secret/square/000.png 1", "link/triangle/000.png 2",
             f"{outside}/secret/circle/001.png 0"]
    (allowed / "train.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(FormErrors) as caught:
        dataset_spec.check({"name": "d", "labels_file": str(allowed / "labels.txt"),
                            "train_list": str(allowed / "train.txt")})
    message = caught.value.errors["train_list"]
    assert refused(message, allowed) and "line 1" not in message
    assert all(f"line {n}:" in message for n in (2, 3, 4)), message
    for field, path in {"labels_file": outside / "labels.txt", "train_folder_prefix": allowed / "link"}.items():
        path.parent.mkdir(exist_ok=True)
        with pytest.raises(FormErrors) as caught:
            dataset_spec.check({"name": "d", "labels_file": str(allowed / "labels.txt"),
                                "train_list": str(allowed / "train.txt"), field: str(path)})
        assert refused(caught.value.errors[field], allowed), field


def test_inference_list_lines_outside_the_roots_are_refused(world):
    allowed, outside = world
    (allowed / "list.txt").write_text("images/circle/000.png\n../outside/secret/circle/000.png\nlink/circle/000.png\n")
    message = inference_spec.list_problem(str(allowed / "list.txt"), None)
    assert refused(message, allowed) and "line 2:" in message and "line 3:" in message and "line 1:" not in message


def test_plugin_folders_are_refused_outside_the_roots(world):
    allowed, outside = world
    for how, raw in escapes(allowed, outside).items():
        with pytest.raises(FormErrors) as caught:
            plugin_dataset_spec.create("image-sunnybrook", {"name": "s", "image_folder": raw,
                                                            "contour_folder": str(allowed / "images")})
        assert refused(caught.value.errors["image_folder"], allowed), how
        code, text = run_cli("dataset", "create", "--plugin", "image-object-detection", "--name", "d",
                             "--option", f"train_image_folder={allowed / 'images'}",
                             "--option", f"train_label_folder={raw}")
        assert code == 2 and refused(text, allowed), (how, text)


def test_model_files_are_refused_outside_the_roots(world):
    allowed, outside = world
    problem = pretrained_weights.check("resnet50", True, str(outside / "weights_notop.h5"), None)["weights_file"]
    assert refused(problem, allowed)
    code, text = run_cli("import", outside / "model.keras", "--labels", allowed / "labels.txt")
    assert code != 0 and refused(text, allowed), text
    code, text = run_cli("dataset", "create", "--name", "d", "--archive", outside / "photos.zip")
    assert code == 2 and refused(text, allowed), text


def test_uploads_over_the_limit_are_refused_by_the_engine(world, jobs_dir, monkeypatch):
    allowed, _ = world
    monkeypatch.setenv("DIGITS_UPLOAD_MAX_MB", "1")
    half = b"x" * (2 ** 19 + 1)
    with pytest.raises(FormErrors) as caught:
        inference_spec.create({"model": "any"}, uploads=[("a.png", half), ("b.png", half)])
    assert "larger than the upload limit of 1 MB (DIGITS_UPLOAD_MAX_MB)" in caught.value.errors["uploads"]
    staged = jobs_dir / ".upload-import-x"
    staged.mkdir()
    (staged / "small.keras").write_bytes(b"x")
    check_source(staged / "small.keras")  # a page's saved upload: read whatever the roots say
    (staged / "big.keras").write_bytes(b"x" * (2 ** 20 + 1))
    with pytest.raises(ImportRefused, match="big.keras .* larger than the upload limit of 1 MB"):
        check_source(staged / "big.keras")
    with pytest.raises(ImportRefused) as caught:
        check_source(staged / ".." / ".." / "outside" / "model.keras")
    assert refused(str(caught.value), allowed)
    assert not server_paths.staged_upload(jobs_dir / "uploads" / "x" / "a.zip")
    assert uploads.over_upload_limit(2 ** 20, "a.zip") is None


# --------------------------------------------------------------------------- Streamlit's XSRF protection

def test_xsrf_protection_is_on_in_the_repo_config(monkeypatch):
    import streamlit.config
    from test_browser import ROOT
    monkeypatch.chdir(ROOT)  # Streamlit reads ./.streamlit/config.toml
    streamlit.config.get_config_options(force_reparse=True)
    try:
        assert streamlit.config.get_where_defined("server.maxUploadSize") == str(ROOT / ".streamlit" / "config.toml")
        assert streamlit.config.get_option("server.enableXsrfProtection") is True  # the default: never turned off
    finally:
        monkeypatch.undo()
        streamlit.config.get_config_options(force_reparse=True)


def put_upload(url: str, headers: dict) -> int:
    """The HTTP status of an upload (PUT /_stcore/upload_file/<session>/<file>) with these headers."""
    import urllib.error
    import urllib.request
    body = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\n"
            b"Content-Type: application/zip\r\n\r\nPK\r\n--b--\r\n")
    request = urllib.request.Request(f"{url}/_stcore/upload_file/some-session/some-file", data=body, method="PUT",
                                     headers={"Content-Type": "multipart/form-data; boundary=b", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_an_upload_without_the_xsrf_token_is_refused_over_http(jobs_dir, tmp_path):
    import urllib.request
    from http.cookies import SimpleCookie

    from test_browser import streamlit_server
    with streamlit_server(jobs_dir, tmp_path / "no-demo", tmp_path / "streamlit.log") as url:
        assert put_upload(url, {}) == 403
        assert put_upload(url, {"X-Xsrftoken": "2|00|00|1"}) == 403  # a token without its cookie
        with urllib.request.urlopen(url + "/_stcore/health", timeout=10) as answer:
            cookie = SimpleCookie(", ".join(answer.headers.get_all("Set-Cookie")))["_streamlit_xsrf"].value
        assert put_upload(url, {"Cookie": f"_streamlit_xsrf={cookie}", "X-Xsrftoken": "2|00|00|1"}) == 403
        # with the server's own token the XSRF check passes and the bogus session is what is refused
        assert put_upload(url, {"Cookie": f"_streamlit_xsrf={cookie}", "X-Xsrftoken": cookie}) == 400
