"""download_data: the offline shapes set, and MNIST/CIFAR from a local mirror of genuinely formatted files."""
import functools
import gzip
import http.server
import io
import pickle
import pickletools
import socket
import struct
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from digits_engine import download_data as dd


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Only loopback connections: a test that tried to reach the real sites fails to connect."""
    real = socket.create_connection

    def loopback_only(address, *args, **kwargs):
        if address[0] not in ("127.0.0.1", "localhost"):
            raise ConnectionRefusedError(f"tests may not reach {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", loopback_only)
    monkeypatch.setenv("no_proxy", "*")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path):
    """serve(folder) -> base URL of an HTTP server on 127.0.0.1 serving that folder."""
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pixels(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _assert_lists(root: Path, names, counts: dict[str, int]):
    assert _lines(root / "labels.txt") == list(names)
    for phase, count in counts.items():
        lines = _lines(root / f"{phase}.txt")
        assert len(lines) == count == len(list((root / phase).glob("*/*.png")))
        for line in lines:
            path, label = line.rsplit(" ", 1)
            assert Path(path).is_absolute() and Path(path).is_file()
            assert Path(path).parent == root / phase / names[int(label)]


# ---------------------------------------------------------------- shapes

def test_shapes_layout_and_images(tmp_path):
    root = dd.make_shapes(tmp_path / "shapes", train_per_class=6, test_per_class=2)
    _assert_lists(root, ["circle", "square", "triangle"], {"train": 18, "test": 6})
    assert sorted(p.name for p in (root / "train" / "circle").iterdir())[:2] == ["00000.png", "00001.png"]
    for png in root.glob("*/*/*.png"):
        with Image.open(png) as img:
            assert (img.mode, img.size) == ("RGB", (32, 32))
    # not blank: a shape on a noisy background leaves many distinct colours
    assert len(np.unique(_pixels(root / "train" / "square" / "00006.png").reshape(-1, 3), axis=0)) > 50


def test_shapes_are_deterministic(tmp_path):
    a = dd.make_shapes(tmp_path / "a", train_per_class=4, test_per_class=1)
    b = dd.make_shapes(tmp_path / "b", train_per_class=4, test_per_class=1)
    pngs = sorted(p.relative_to(a) for p in a.glob("*/*/*.png"))
    assert pngs == sorted(p.relative_to(b) for p in b.glob("*/*/*.png"))
    assert all(np.array_equal(_pixels(a / p), _pixels(b / p)) for p in pngs)
    c = dd.make_shapes(tmp_path / "c", train_per_class=4, test_per_class=1, seed=1)
    assert not np.array_equal(_pixels(a / pngs[0]), _pixels(c / pngs[0]))


def test_shape_contrasts_with_background():
    rng = np.random.default_rng(5)
    for _ in range(200):
        background = rng.integers(0, 256, 3)
        colour = dd._contrasting_colour(rng, background)
        luma = np.array([0.299, 0.587, 0.114])
        assert abs(luma @ colour - luma @ background) >= 110


def test_ensure_shapes_is_idempotent(tmp_path):
    root = dd.ensure_shapes(tmp_path / "demo", train_per_class=2, test_per_class=1)
    marker = root / "train" / "circle" / "00000.png"
    before = marker.stat().st_mtime_ns
    (root / "keep.me").write_text("x")
    assert dd.ensure_shapes(tmp_path / "demo", train_per_class=2, test_per_class=1) == root
    assert marker.stat().st_mtime_ns == before and (root / "keep.me").exists()
    assert len(_lines(root / "train.txt")) == 6


def test_ensure_shapes_completes_an_interrupted_run(tmp_path):
    (tmp_path / "demo" / "train" / "circle").mkdir(parents=True)  # no test.txt: never finished
    root = dd.ensure_shapes(tmp_path / "demo", train_per_class=2, test_per_class=1)
    _assert_lists(root, ["circle", "square", "triangle"], {"train": 6, "test": 3})


def test_cli_shapes(tmp_path, monkeypatch):
    monkeypatch.setattr(dd, "make_shapes", functools.partial(dd.make_shapes, train_per_class=2, test_per_class=1))
    assert dd.main(["shapes", str(tmp_path / "s")]) == 0
    assert (tmp_path / "s" / "test.txt").is_file()


# ---------------------------------------------------------------- mnist

def _idx(path: Path, array: np.ndarray):
    header = struct.pack(f">{array.ndim + 1}I", 0x0800 + array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_mirror(tmp_path):
    folder = tmp_path / "mirror"
    folder.mkdir()
    rng = np.random.default_rng(0)
    data = {}
    for prefix, n in (("train", 20), ("t10k", 7)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        _idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        _idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
        data[prefix] = (images, labels)
    return folder, data


def test_mnist_from_mirror(tmp_path, mnist_mirror, serve):
    folder, data = mnist_mirror
    out = tmp_path / "mnist"
    assert dd.main(["mnist", str(out), "--mirror", serve(folder)]) == 0
    _assert_lists(out, [str(d) for d in range(10)], {"train": 20, "test": 7})
    images, labels = data["train"]
    png = out / "train" / str(labels[13]) / "00013.png"
    with Image.open(png) as img:
        assert (img.mode, img.size) == ("L", (28, 28))
    np.testing.assert_array_equal(_pixels(png), 255 - images[13])  # inverted, as DIGITS did
    t_images, t_labels = data["t10k"]
    np.testing.assert_array_equal(_pixels(out / "test" / str(t_labels[6]) / "00006.png"), 255 - t_images[6])
    assert sorted(p.name for p in (out / ".downloads").iterdir()) == sorted(dd.MNIST_FILES)


def test_downloads_are_reused_and_clean_removes_them(tmp_path, mnist_mirror, serve):
    folder, _ = mnist_mirror
    out = tmp_path / "mnist"
    assert dd.main(["mnist", str(out), "--mirror", serve(folder)]) == 0
    dead = f"http://127.0.0.1:{_free_port()}/"
    assert dd.main(["mnist", str(out), "--mirror", dead, "--clean"]) == 0  # nothing fetched
    assert not (out / ".downloads").exists()
    assert len(_lines(out / "train.txt")) == 20


def test_damaged_archive_names_the_file(tmp_path, mnist_mirror, serve, capsys):
    folder, _ = mnist_mirror
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"<html>moved</html>")
    assert dd.main(["mnist", str(tmp_path / "m"), "--mirror", serve(folder)]) == 1
    err = capsys.readouterr().err
    assert "t10k-images-idx3-ubyte.gz is not a valid archive" in err and "Traceback" not in err


# ---------------------------------------------------------------- cifar

class _Py2Pickler(pickle._Pickler):
    """Writes pickles as Python 2 + numpy 1 wrote the real CIFAR files: every str and bytes
    as a Python 2 str (SHORT_BINSTRING/BINSTRING), which loads as bytes with encoding='bytes'."""

    def save_bytes(self, obj):
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256
                   else pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin-1"))

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def _pickled(obj) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # numpy 1 named the array constructor numpy.core.multiarray (GLOBAL is newline-delimited text)
    return buf.getvalue().replace(b"numpy._core.multiarray\n_reconstruct", b"numpy.core.multiarray\n_reconstruct")


def test_py2_style_pickle_matches_the_real_files():
    ops = list(pickletools.genops(_pickled({b"data": _planes(1, 0)})))
    assert {op.name for op, _, _ in ops} & {"BINUNICODE", "BINBYTES", "SHORT_BINBYTES"} == set()
    assert {arg for op, arg, _ in ops if op.name == "GLOBAL"} == {
        "numpy ndarray", "numpy dtype", "numpy.core.multiarray _reconstruct"}


def test_python3_protocol2_pickles_load_too():
    obj = {b"labels": [1], b"data": _planes(2, 0)}
    loaded = dd._ArrayUnpickler(io.BytesIO(pickle.dumps(obj, protocol=2)), encoding="bytes").load()
    assert loaded[b"labels"] == [1] and np.array_equal(loaded[b"data"], obj[b"data"])


def _tar_gz(path: Path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))


def _planes(n: int, seed: int) -> np.ndarray:
    """n rows of 3072 bytes; the red plane is all 200, green 100, blue random."""
    rows = np.empty((n, 3, 1024), np.uint8)
    rows[:, 0], rows[:, 1] = 200, 100
    rows[:, 2] = np.random.default_rng(seed).integers(0, 256, (n, 1024))
    return rows.reshape(n, 3072)


@pytest.fixture
def cifar10_mirror(tmp_path):
    folder = tmp_path / "mirror10"
    folder.mkdir()
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer",
             b"dog", b"frog", b"horse", b"ship", b"truck"]
    members = {"cifar-10-batches-py/readme.html": b"<html></html>",
               "cifar-10-batches-py/batches.meta": _pickled(
                   {b"num_cases_per_batch": 3, b"label_names": names, b"num_vis": 3072})}
    for i, batch in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        members[f"cifar-10-batches-py/{batch}"] = _pickled({
            b"batch_label": f"{batch} of 6".encode(), b"labels": [(i + j) % 10 for j in range(3)],
            b"data": _planes(3, i), b"filenames": [f"img_{i}_{j}.png".encode() for j in range(3)]})
    _tar_gz(folder / "cifar-10-python.tar.gz", members)
    return folder


def test_cifar10_from_mirror(tmp_path, cifar10_mirror, serve):
    out = tmp_path / "cifar10"
    assert dd.main(["cifar10", str(out), "--mirror", serve(cifar10_mirror)]) == 0
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _assert_lists(out, names, {"train": 15, "test": 3})
    # train index 4 is data_batch_2 row 1: label (1 + 1) % 10 = bird
    pixels = _pixels(out / "train" / "bird" / "00004.png")
    assert pixels.shape == (32, 32, 3)
    assert (pixels[..., 0] == 200).all() and (pixels[..., 1] == 100).all()
    np.testing.assert_array_equal(pixels[..., 2], _planes(3, 1)[1, 2048:].reshape(32, 32))
    assert (out / "test" / "horse" / "00002.png").is_file()  # test_batch is i=5: (5 + 2) % 10


@pytest.fixture
def cifar100_mirror(tmp_path):
    folder = tmp_path / "mirror100"
    folder.mkdir()
    fine = [f"fine{k}".encode() for k in range(100)]
    coarse = [f"coarse{k}".encode() for k in range(20)]
    members = {"cifar-100-python/meta": _pickled({b"fine_label_names": fine, b"coarse_label_names": coarse})}
    for phase, n in (("train", 5), ("test", 2)):
        members[f"cifar-100-python/{phase}"] = _pickled({
            b"filenames": [f"{phase}_{j}.png".encode() for j in range(n)], b"batch_label": phase.encode(),
            b"fine_labels": [j * 21 for j in range(n)], b"coarse_labels": [j * 4 for j in range(n)],
            b"data": _planes(n, n)})
    _tar_gz(folder / "cifar-100-python.tar.gz", members)
    return folder


def test_cifar100_from_mirror(tmp_path, cifar100_mirror, serve):
    out = tmp_path / "cifar100"
    assert dd.main(["cifar100", str(out), "--mirror", serve(cifar100_mirror), "--clean"]) == 0
    _assert_lists(out / "fine", [f"fine{k}" for k in range(100)], {"train": 5, "test": 2})
    _assert_lists(out / "coarse", [f"coarse{k}" for k in range(20)], {"train": 5, "test": 2})
    assert (out / "fine" / "train" / "fine84" / "00004.png").is_file()
    pixels = _pixels(out / "coarse" / "train" / "coarse16" / "00004.png")
    np.testing.assert_array_equal(pixels[..., 2], _planes(5, 5)[4, 2048:].reshape(32, 32))
    assert (pixels[..., 0] == 200).all()
    assert not (out / ".downloads").exists()


def test_pickle_with_foreign_objects_is_refused(tmp_path, serve, capsys):
    folder = tmp_path / "evil"
    folder.mkdir()
    members = {f"cifar-100-python/{n}": pickle.dumps(print) for n in ("train", "test", "meta")}
    _tar_gz(folder / "cifar-100-python.tar.gz", members)
    assert dd.main(["cifar100", str(tmp_path / "out"), "--mirror", serve(folder)]) == 1
    assert "not a valid archive" in capsys.readouterr().err


# ---------------------------------------------------------------- errors for people

def test_dead_mirror_is_a_clear_error(tmp_path, capsys):
    mirror = f"http://127.0.0.1:{_free_port()}/base"
    assert dd.main(["cifar10", str(tmp_path / "c"), "--mirror", mirror]) == 1
    err = capsys.readouterr().err
    assert f"{mirror}/cifar-10-python.tar.gz" in err and "--mirror" in err
    assert "refused" in err.lower() and "Traceback" not in err
    assert not list((tmp_path / "c" / ".downloads").iterdir())  # no half-written file left


def test_missing_file_on_mirror_says_http_status(tmp_path, serve, capsys):
    (tmp_path / "empty").mkdir()
    assert dd.main(["mnist", str(tmp_path / "m"), "--mirror", serve(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert "train-images-idx3-ubyte.gz" in err and "HTTP 404" in err


def test_default_sources_are_the_upstream_urls(tmp_path, capsys):
    assert dd.main(["mnist", str(tmp_path / "m")]) == 1  # the no_internet fixture refuses it
    assert "http://yann.lecun.com/exdb/mnist/train-images-idx3-ubyte.gz" in capsys.readouterr().err
    assert dd.main(["cifar100", str(tmp_path / "c")]) == 1
    assert "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz" in capsys.readouterr().err


def test_unknown_name_is_a_clear_error(tmp_path, capsys):
    assert dd.main(["imagenet", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "imagenet" in err and "shapes, mnist, cifar10, cifar100" in err and "Traceback" not in err


def test_usage_error_returns_non_zero(capsys):
    assert dd.main([]) == 2
    assert "usage:" in capsys.readouterr().err
