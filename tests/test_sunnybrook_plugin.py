"""The Sunnybrook DICOM data plugin (plugins/sunnybrook), installed as a package.

DICOM files are written here with pydicom (known pixel arrays) next to contour
files with known polygons, so every mask is compared with one computed
independently (numpy index ranges). The sample files that pydicom ships in its
wheel are used too. Run `pip install -e plugins/sunnybrook` first (`make test`
does); under CI a missing plugin is a failure, not a skip.
"""
import importlib.metadata
import json
import multiprocessing
import os
import random
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

if os.environ.get("CI") != "true":
    pytest.importorskip("digits_sunnybrook", reason="install the plugin: pip install -e plugins/sunnybrook")

import pydicom  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.dataset import FileDataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage, generate_uid  # noqa: E402

from digits_engine.fields import validate  # noqa: E402
from digits_engine.plugins.interfaces import DataPlugin  # noqa: E402
from digits_sunnybrook.data import DataIngestion  # noqa: E402

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "plugins" / "sunnybrook"
RECT = [(10, 10), (20, 10), (20, 25), (10, 25)]  # x, y


def rect_mask(height=32, width=32, x0=10, x1=20, y0=10, y1=25):
    """The mask of an axis-aligned rectangle polygon: PIL fills the inside and
    draws the outline, so both corner rows and columns are included."""
    mask = np.zeros((height, width), np.uint8)
    mask[y0:y1 + 1, x0:x1 + 1] = 1
    return mask


def gradient(height=32, width=32):
    """A uint16 image whose 0..255-windowed version is known exactly: 4 * (0..255)."""
    return (np.arange(height * width) % 256 * 4).astype(np.uint16).reshape(height, width)


def write_dicom(path: Path, pixels: np.ndarray, syntax=ExplicitVRLittleEndian, **attributes) -> Path:
    """A single-frame MONOCHROME2 MR image holding `pixels` (uint16 or int16)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MRImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "MR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    for name, value in attributes.items():
        setattr(ds, name, value)
    ds.PixelData = pixels.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        ds.save_as(path, enforce_file_format=True)  # pydicom 3
    except TypeError:
        ds.save_as(path, write_like_original=False)  # pydicom 2.4
    return path


def write_contour(path: Path, points) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{x:.2f} {y:.2f}\n" for x, y in points))
    return path


def make_study(root: Path, n: int = 3, shape=(32, 32)) -> tuple[Path, Path]:
    """root/dicom/IM-0001-00NN.dcm with gradients, root/contours/IM-0001-00NN-icontour-manual.txt rectangles."""
    for i in range(1, n + 1):
        write_dicom(root / "dicom" / f"IM-0001-{i:04d}.dcm", gradient(*shape))
        write_contour(root / "contours" / f"IM-0001-{i:04d}-icontour-manual.txt", RECT)
    return root / "dicom", root / "contours"


def plugin(images, contours, **options) -> DataIngestion:
    return DataIngestion(image_folder=str(images), contour_folder=str(contours), **options)


# -- packaging ---------------------------------------------------------------------------------------

def test_entry_point_is_discoverable():
    found = {ep.name: ep for ep in importlib.metadata.entry_points(group="digits.plugins.data")}
    assert "image-sunnybrook" in found
    assert found["image-sunnybrook"].value == "digits_sunnybrook.data:DataIngestion"
    cls = found["image-sunnybrook"].load()
    assert cls is DataIngestion and issubclass(cls, DataPlugin)
    assert importlib.metadata.version("digits-sunnybrook")
    assert any(r.startswith("pydicom") for r in importlib.metadata.requires("digits-sunnybrook"))


def test_packaging_never_imports_digits():
    project = tomllib.loads((PLUGIN_DIR / "pyproject.toml").read_text())
    assert project["build-system"]["requires"] == ["setuptools>=68"]
    assert "dynamic" not in project["project"]  # static metadata: nothing imported to build it
    assert not any(d.split(">")[0].split("=")[0].strip() == "digits" for d in project["project"]["dependencies"])
    code = "import sys, digits_sunnybrook; assert 'digits_engine' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# -- the contract -----------------------------------------------------------------------------------

def test_identity_and_forms():
    assert DataIngestion.get_id() == "image-sunnybrook"
    assert DataIngestion.get_title() == "Sunnybrook LV segmentation (DICOM)"
    assert DataIngestion.get_category() == "Images"
    assert DataIngestion.task == "segmentation"
    fields = {f.name: f for f in DataIngestion.dataset_fields()}
    assert list(fields) == ["image_folder", "contour_folder", "val_pct", "size", "mixed_sizes", "seed"]
    assert fields["image_folder"].required and fields["contour_folder"].required
    values = validate(DataIngestion.dataset_fields(), {"image_folder": "/a", "contour_folder": "/b"})
    assert values == {"image_folder": "/a", "contour_folder": "/b", "val_pct": 10, "size": 64,
                      "mixed_sizes": "resize", "seed": None}
    assert [(f.name, f.kind) for f in DataIngestion.inference_fields()] == [("dicom_file", "path")]
    assert DataIngestion(image_folder="/a", contour_folder="/b").class_labels() == ["background", "left ventricle"]


def test_bad_options_are_explained():
    with pytest.raises(ValueError, match="val_pct must be between 0 and 100; got 150"):
        DataIngestion(image_folder="/a", contour_folder="/b", val_pct=150)
    with pytest.raises(ValueError, match="mixed_sizes must be one of resize, reject"):
        DataIngestion(image_folder="/a", contour_folder="/b", mixed_sizes="crop")
    options = DataIngestion(image_folder="/a", contour_folder="/b", val_pct="20", size="0").get_user_data()
    assert options["val_pct"] == 20 and options["size"] == 0  # CLI strings become numbers


# -- encode_entry: images and masks --------------------------------------------------------------------

def test_exact_image_and_mask_at_original_size(tmp_path):
    images, contours = make_study(tmp_path, n=1)
    ingest = plugin(images, contours, size=0, val_pct=0, seed=1)
    [entry] = ingest.itemize_entries("train")
    assert entry == (str(images / "IM-0001-0001.dcm"), str(contours / "IM-0001-0001-icontour-manual.txt"))
    image, mask = ingest.encode_entry(entry)
    assert image.shape == (32, 32, 1) and image.dtype == np.uint8
    assert mask.shape == (32, 32, 1) and mask.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], (np.arange(1024) % 256).reshape(32, 32))
    np.testing.assert_array_equal(mask[..., 0], rect_mask())
    assert ingest.problems == []


def test_plain_txt_contour_and_implicit_vr(tmp_path):
    write_dicom(tmp_path / "img" / "a" / "slice7.dcm", gradient(), syntax=ImplicitVRLittleEndian)
    write_contour(tmp_path / "lbl" / "slice7.txt", [(2.0, 3.0), (8.0, 3.0), (8.0, 5.0), (2.0, 5.0)])
    ingest = plugin(tmp_path / "img", tmp_path / "lbl", size=0, val_pct=0)
    [entry] = ingest.itemize_entries("train")
    _, mask = ingest.encode_entry(entry)
    np.testing.assert_array_equal(mask[..., 0], rect_mask(x0=2, x1=8, y0=3, y1=5))


def test_rescale_signed_pixels_and_constant_image(tmp_path):
    signed = (gradient().astype(np.int32) - 600).astype(np.int16)  # -600 .. 420
    path = write_dicom(tmp_path / "neg.dcm", signed, RescaleSlope="-1", RescaleIntercept="100")
    ingest = DataIngestion(is_inference_db=True, dicom_file=str(path), size=0)
    image, label = ingest.encode_entry((str(path), None))
    assert label is None
    np.testing.assert_array_equal(image[..., 0], 255 - (np.arange(1024) % 256).reshape(32, 32))  # slope -1: inverted
    flat = write_dicom(tmp_path / "flat.dcm", np.full((8, 8), 700, np.uint16))
    image, _ = ingest.encode_entry((str(flat), None))
    np.testing.assert_array_equal(image, np.zeros((8, 8, 1), np.uint8))


def test_resize_image_bilinear_and_mask_nearest(tmp_path):
    images, contours = make_study(tmp_path, n=1)
    ingest = plugin(images, contours, size=16, val_pct=0)
    image, mask = ingest.encode_entry(ingest.itemize_entries("train")[0])
    assert image.shape == (16, 16, 1) and mask.shape == (16, 16, 1)
    # halving with nearest neighbours samples the centre of each 2x2 block: odd rows and columns
    np.testing.assert_array_equal(mask[..., 0], rect_mask()[1::2, 1::2])
    assert set(np.unique(mask)) == {0, 1}
    assert image.dtype == np.uint8 and image.max() > image.min()


def test_mixed_sizes_rejected_or_resized(tmp_path):
    images, contours = make_study(tmp_path, n=3)  # three 32x32 images
    odd = write_dicom(images / "IM-0001-0009.dcm", gradient(24, 40))  # 40 wide, 24 high
    odd_contour = write_contour(contours / "IM-0001-0009-icontour-manual.txt", [(2, 2), (30, 2), (30, 20), (2, 20)])
    entry = (str(odd), str(odd_contour))

    reject = plugin(images, contours, size=0, mixed_sizes="reject", val_pct=0)
    assert len(reject.itemize_entries("train")) == 4
    assert reject.get_user_data()["reference_size"] == [32, 32]
    json.dumps(reject.get_user_data())  # stored with the job
    with pytest.raises(ValueError, match=r"IM-0001-0009.dcm is 40x24 but most images are 32x32"):
        reject.encode_entry(entry)
    image, _ = reject.encode_entry(reject.itemize_entries("train")[0])  # the others pass unchanged
    assert image.shape == (32, 32, 1)
    # pool processes made from the stored options, or from the form alone, decide the same
    for again in (DataIngestion(**reject.get_user_data()), plugin(images, contours, size=0, mixed_sizes="reject")):
        with pytest.raises(ValueError, match="40x24"):
            again.encode_entry(entry)

    resize = plugin(images, contours, size=0, val_pct=0)  # mixed_sizes defaults to "resize"
    resize.itemize_entries("train")
    image, mask = resize.encode_entry(entry)
    assert image.shape == (32, 32, 1) and mask.shape == (32, 32, 1)
    # nearest neighbour: output pixel i samples input pixel floor((i + 0.5) * in / out)
    rows, cols = ((np.arange(32) + 0.5) * 24 / 32).astype(int), ((np.arange(32) + 0.5) * 40 / 32).astype(int)
    np.testing.assert_array_equal(mask[..., 0], rect_mask(24, 40, 2, 30, 2, 20)[np.ix_(rows, cols)])


# -- itemize_entries: pairing and split ----------------------------------------------------------------

def test_val_split_is_seeded(tmp_path):
    images, contours = make_study(tmp_path, n=20, shape=(8, 8))
    ingest = plugin(images, contours, val_pct=25, seed=7)
    train, val, test = (ingest.itemize_entries(s) for s in ("train", "val", "test"))
    assert (len(train), len(val), test) == (15, 5, [])
    everything = sorted((str(images / f"IM-0001-{i:04d}.dcm"), str(contours / f"IM-0001-{i:04d}-icontour-manual.txt"))
                        for i in range(1, 21))
    assert sorted(train + val) == everything
    expected = list(everything)
    random.Random(7).shuffle(expected)
    assert sorted(val) == sorted(expected[:5])
    assert plugin(images, contours, val_pct=25, seed=7).itemize_entries("val") == val
    assert plugin(images, contours, val_pct=25, seed=8).itemize_entries("val") != val
    # no seed: one is picked and stored, so the job's stages and a rebuild agree
    unseeded = plugin(images, contours, val_pct=25)
    seed = unseeded.get_user_data()["seed"]
    assert isinstance(seed, int)
    assert DataIngestion(**unseeded.get_user_data()).itemize_entries("val") == unseeded.itemize_entries("val")
    assert len(plugin(images, contours, val_pct=0).itemize_entries("val")) == 0


def test_contour_without_image_is_reported(tmp_path):
    images, contours = make_study(tmp_path, n=2)
    stray = write_contour(contours / "IM-0001-0099-icontour-manual.txt", RECT)
    outer = write_contour(contours / "IM-0001-0001-ocontour-manual.txt", RECT)  # Sunnybrook's outer wall
    ingest = plugin(images, contours, val_pct=0)
    assert len(ingest.itemize_entries("train")) == 2
    assert [p for p, _ in ingest.problems] == [str(stray)]
    assert "no DICOM image IM-0001-0099.dcm" in ingest.problems[0][1]
    assert [p for p, _ in ingest.ignored] == [str(outer)]


def test_same_name_in_patient_folders(tmp_path):
    for patient, value in (("SC-HF-I-1", 100), ("SC-HF-I-2", 200)):
        write_dicom(tmp_path / "dicom" / patient / "IM-0001-0048.dcm", np.full((16, 16), value, np.uint16))
    contour = write_contour(tmp_path / "contours" / "SC-HF-I-01" / "contours-manual" / "IRCCI-expert"
                            / "IM-0001-0048-icontour-manual.txt", [(1, 1), (5, 1), (5, 5)])
    ingest = plugin(tmp_path / "dicom", tmp_path / "contours", val_pct=0)
    assert ingest.itemize_entries("train") == [(str(tmp_path / "dicom" / "SC-HF-I-1" / "IM-0001-0048.dcm"),
                                                str(contour))]
    loose = write_contour(tmp_path / "contours" / "IM-0001-0048.txt", [(1, 1), (5, 1), (5, 5)])
    ingest = plugin(tmp_path / "dicom", tmp_path / "contours", val_pct=0)
    ingest.itemize_entries("train")
    assert ingest.problems[0][0] == str(loose) and "matches 2 images" in ingest.problems[0][1]


def test_empty_or_unmatched_folders_stop_with_a_clear_message(tmp_path):
    (tmp_path / "empty").mkdir()
    images, contours = make_study(tmp_path / "study", n=1)
    cases = [
        (tmp_path / "empty", contours, r"No DICOM files \(\*\.dcm\) in .*empty or its subfolders"),
        (images, tmp_path / "empty", r"No contour files \(\*\.txt\) in .*empty"),
        (tmp_path / "missing", contours, r"DICOM folder .*missing does not exist"),
        (images, contours / "IM-0001-0001-icontour-manual.txt", "is a file, not a folder"),
    ]
    for image_folder, contour_folder, message in cases:
        with pytest.raises(ValueError, match=message):
            plugin(image_folder, contour_folder).itemize_entries("train")
    with pytest.raises(ValueError, match="DICOM folder is required"):
        DataIngestion(contour_folder=str(contours)).itemize_entries("train")
    write_contour(tmp_path / "other" / "IM-0002-0001.txt", RECT)
    unmatched = plugin(images, tmp_path / "other")
    with pytest.raises(ValueError, match="None of the 1 contour files .* belongs to one of the 1 DICOM images"):
        unmatched.itemize_entries("train")
    assert len(unmatched.problems) == 1  # listed for the job even though it stopped


# -- encode_entry: rejected entries -------------------------------------------------------------------

def test_polygon_outside_the_image_is_rejected(tmp_path):
    images, contours = make_study(tmp_path, n=1)
    bad = write_contour(contours / "IM-0001-0001-icontour-manual.txt", [(10, 10), (40, 10), (40, 20)])
    ingest = plugin(images, contours, val_pct=0)
    with pytest.raises(ValueError, match=r"contour .*IM-0001-0001-icontour-manual.txt has points outside "
                                         r"the 32x32 image .*\(40, 10\)"):
        ingest.encode_entry((str(images / "IM-0001-0001.dcm"), str(bad)))


def test_bad_contour_files_are_rejected(tmp_path):
    images, contours = make_study(tmp_path, n=1)
    dicom = str(images / "IM-0001-0001.dcm")
    text = contours / "IM-0001-0001-icontour-manual.txt"
    text.write_text("10 10\n20 10 5\n")
    with pytest.raises(ValueError, match=r"line 2: expected two numbers"):
        plugin(images, contours).encode_entry((dicom, str(text)))
    text.write_text("10 10\n20 10\n")
    with pytest.raises(ValueError, match="has 2 point"):
        plugin(images, contours).encode_entry((dicom, str(text)))


def test_unreadable_dicom_is_rejected_with_the_reason(tmp_path):
    images, contours = make_study(tmp_path, n=1)
    garbage = images / "IM-0001-0002.dcm"
    garbage.write_bytes(b"this is not a DICOM file at all" * 10)
    write_contour(contours / "IM-0001-0002-icontour-manual.txt", RECT)
    ingest = plugin(images, contours, val_pct=0)
    entries = ingest.itemize_entries("train")
    assert len(entries) == 2  # listed, then rejected by encode_entry with its reason
    with pytest.raises(ValueError, match=r"Cannot read DICOM file .*IM-0001-0002.dcm: .*DICM") as info:
        ingest.encode_entry(entries[1])
    assert "force=True" not in str(info.value)  # pydicom's advice to programmers is not for users

    header_only = FileDataset(str(images / "x.dcm"), {}, file_meta=FileMetaDataset(), preamble=b"\0" * 128)
    header_only.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    header_only.file_meta.MediaStorageSOPClassUID = MRImageStorage
    header_only.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    header_only.Rows = header_only.Columns = 32
    header_only.PatientName = "Nobody"
    pydicom.dcmwrite(images / "IM-0001-0003.dcm", header_only)
    with pytest.raises(ValueError, match=r"IM-0001-0003.dcm has no pixel data"):
        ingest.encode_entry((str(images / "IM-0001-0003.dcm"), entries[0][1]))


# -- inference ----------------------------------------------------------------------------------------

def test_inference_entry(tmp_path):
    images, contours = make_study(tmp_path, n=2)
    dataset = plugin(images, contours, size=0, mixed_sizes="reject", val_pct=0)
    dataset.itemize_entries("train")
    upload = write_dicom(tmp_path / "upload" / "tmpab12.dcm", gradient(48, 48))
    ingest = DataIngestion(is_inference_db=True, **dataset.get_user_data(), dicom_file=str(upload))
    assert [ingest.itemize_entries(s) for s in ("train", "val", "test")] == [[], [], [(str(upload), None)]]
    image, label = ingest.encode_entry(ingest.itemize_entries("test")[0])
    assert image.shape == (32, 32, 1) and label is None  # the dataset's size, whatever the choice for datasets
    form_only = DataIngestion(is_inference_db=True, image_folder=str(images), contour_folder=str(contours),
                              size=0, dicom_file=str(upload))  # the dataset's form without what itemize stored
    assert form_only.encode_entry((str(upload), None))[0].shape == (32, 32, 1)
    alone = DataIngestion(is_inference_db=True, size=0, dicom_file=str(upload))
    assert alone.encode_entry((str(upload), None))[0].shape == (48, 48, 1)  # nothing to match: kept
    gone = DataIngestion(is_inference_db=True, image_folder=str(tmp_path / "gone"), contour_folder=str(contours),
                         size=0, dicom_file=str(upload))
    assert gone.encode_entry((str(upload), None))[0].shape == (48, 48, 1)
    with pytest.raises(ValueError, match="DICOM file .*nothing.dcm does not exist"):
        DataIngestion(is_inference_db=True, dicom_file=str(tmp_path / "nothing.dcm")).itemize_entries("test")
    with pytest.raises(ValueError, match="Choose a DICOM file"):
        DataIngestion(is_inference_db=True).itemize_entries("test")


# -- pydicom's own sample files -----------------------------------------------------------------------

@pytest.mark.parametrize("name,shape", [("CT_small.dcm", (128, 128)), ("MR_small.dcm", (64, 64))])
def test_pydicom_sample_files(tmp_path, name, shape):
    sample = get_testdata_file(name)  # shipped in pydicom's wheel: no download
    assert sample and Path(sample).is_file()
    (tmp_path / "dicom").mkdir()
    shutil.copy(sample, tmp_path / "dicom" / name)
    height, width = shape
    square = [(width // 4, height // 4), (3 * width // 4, height // 4),
              (3 * width // 4, 3 * height // 4), (width // 4, 3 * height // 4)]
    write_contour(tmp_path / "contours" / (Path(name).stem + "-icontour-manual.txt"), square)
    ingest = plugin(tmp_path / "dicom", tmp_path / "contours", size=0, val_pct=0)
    image, mask = ingest.encode_entry(ingest.itemize_entries("train")[0])
    assert image.shape == (height, width, 1) and mask.shape == (height, width, 1)
    assert image.min() == 0 and image.max() == 255
    np.testing.assert_array_equal(mask[..., 0], rect_mask(height, width, width // 4, 3 * width // 4,
                                                          height // 4, 3 * height // 4))
    image, mask = plugin(tmp_path / "dicom", tmp_path / "contours", size=32).encode_entry(
        ingest.itemize_entries("train")[0])
    assert image.shape == (32, 32, 1) and mask.sum() > 0


def test_encodes_in_pool_processes(tmp_path):
    """Entries are encoded in other processes: the plugin and its entries must travel there."""
    images, contours = make_study(tmp_path, n=4)
    ingest = plugin(images, contours, size=16, val_pct=0)
    entries = ingest.itemize_entries("train")
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(ingest.encode_entry, entries)
    assert [(i.shape, m.shape) for i, m in results] == [((16, 16, 1), (16, 16, 1))] * 4
    np.testing.assert_array_equal(results[0][1], ingest.encode_entry(entries[0])[1])
