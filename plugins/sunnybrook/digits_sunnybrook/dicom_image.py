"""DICOM images as 8-bit grey arrays.

pydicom reads and decodes the file; this module finds DICOM files in a folder,
applies the modality rescale (RescaleSlope/RescaleIntercept), windows each
image to 0..255 and turns every failure into a ValueError that names the file
and says what to do. Contours and masks are left to `contours`.
"""
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.errors import InvalidDicomError

DICOM_SUFFIXES = (".dcm", ".dicom")
_FORCE_HINT = " Use force=True to force reading."  # pydicom's advice to programmers, not to our users


def is_dicom_file(path: Path) -> bool:
    """A *.dcm / *.dicom file, or a file without a suffix that carries the DICOM "DICM" marker."""
    if path.name.startswith("."):  # hidden files, macOS "._" resource forks
        return False
    if path.suffix.lower() in DICOM_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:
        with open(path, "rb") as f:
            return f.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def find_dicom_files(folder: Path) -> list[Path]:
    """The DICOM files under `folder` (recursively), sorted."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_dicom_file(p))


def read_dataset(path, header_only: bool = False) -> pydicom.Dataset:
    """The pydicom dataset of `path`, or ValueError with the file and pydicom's reason.

    A file without the 128-byte preamble (older exports) is read anyway when it
    holds an image; otherwise pydicom's first reason is reported.
    """
    try:
        return pydicom.dcmread(path, stop_before_pixels=header_only)
    except InvalidDicomError as exc:
        reason = str(exc).replace(_FORCE_HINT, "")
        try:
            with warnings.catch_warnings():  # a probe: what it finds in a non-DICOM file is noise
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=header_only, force=True)
        except Exception:
            ds = None
        if ds is not None and "Rows" in ds and "Columns" in ds:
            return ds
        raise ValueError(f"Cannot read DICOM file {path}: {reason} "
                         "Check that it is a DICOM image, or remove it from the folder.") from exc
    except Exception as exc:  # truncated or corrupt files raise many kinds of errors
        raise ValueError(f"Cannot read DICOM file {path}: {type(exc).__name__}: {exc}. "
                         "The file may be damaged: copy it again, or remove it from the folder.") from exc


def image_size(path) -> tuple[int, int] | None:
    """(height, width) from the header alone, or None when the file cannot be read."""
    try:
        ds = read_dataset(path, header_only=True)
        return int(ds.Rows), int(ds.Columns)
    except (ValueError, AttributeError, TypeError):
        return None


def _number(ds, keyword: str, default: float, path) -> float:
    value = ds.get(keyword)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"DICOM file {path}: {keyword} {value!r} is not a number; "
                         "fix the header or remove the file.") from None


def read_pixels(path) -> np.ndarray:
    """The image of a single-frame DICOM file as HxW float64, in modality units
    (RescaleSlope and RescaleIntercept applied), brighter = higher value."""
    ds = read_dataset(path)
    if "PixelData" not in ds:
        raise ValueError(f"DICOM file {path} has no pixel data (it is not an image, "
                         "e.g. a report or a DICOMDIR): remove it from the folder.")
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ValueError(f"DICOM file {path} holds {frames} frames; this plugin reads one image "
                         "per file: export the frames as separate files.")
    try:
        pixels = ds.pixel_array
    except Exception as exc:
        raise ValueError(f"Cannot decode the pixels of DICOM file {path}: {exc} "
                         "Export it uncompressed, or install the decoder pydicom names.") from exc
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4):  # colour: keep the luminance
        pixels = pixels[..., :3] @ np.array([0.299, 0.587, 0.114])
    if pixels.ndim != 2:
        raise ValueError(f"DICOM file {path}: expected a 2-D image, got pixels of shape {pixels.shape}.")
    pixels = pixels * _number(ds, "RescaleSlope", 1.0, path) + _number(ds, "RescaleIntercept", 0.0, path)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":  # 0 is white
        pixels = -pixels
    return pixels


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Window an image to 0..255: its minimum becomes 0 and its maximum 255
    (a constant image becomes all 0)."""
    finite = np.isfinite(pixels)
    if not finite.any():
        return np.zeros(pixels.shape, np.uint8)
    low, high = float(pixels[finite].min()), float(pixels[finite].max())
    if high <= low:
        return np.zeros(pixels.shape, np.uint8)
    scaled = (np.where(finite, pixels, low) - low) * (255.0 / (high - low))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
