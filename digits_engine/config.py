"""Settings read from the environment, with the defaults a single-box install wants.

Every setting is a function so that tests (and the System page) see the current
environment, not the one at import time.
"""
import functools
import os
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def jobs_dir() -> Path:
    """Where every job lives (`DIGITS_JOBS_DIR`, default `<repo>/jobs`)."""
    path = Path(os.environ.get("DIGITS_JOBS_DIR") or REPO_ROOT / "jobs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_roots() -> list[Path]:
    """Server folders a dataset form may read (`DIGITS_DATA_ROOTS`, os.pathsep-separated)."""
    raw = os.environ.get("DIGITS_DATA_ROOTS", "")
    roots = [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]
    return roots or [Path("/").resolve()]


def credentials_dir() -> Path:
    """Where a waiting job's secrets (S3 keys) wait for its worker, outside the jobs directory
    (`DIGITS_CREDENTIALS_DIR`, default `~/.digits/credentials`; made 0700)."""
    path = Path(os.environ.get("DIGITS_CREDENTIALS_DIR") or Path.home() / ".digits" / "credentials").expanduser()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def demo_data_dir() -> Path:
    """Where `make run` writes the offline demo dataset (`DIGITS_DEMO_DIR`, default `<repo>/data/shapes`)."""
    return Path(os.environ.get("DIGITS_DEMO_DIR") or REPO_ROOT / "data" / "shapes")


def detection_demo_dir() -> Path:
    """Where `make run` writes the object detection demo (`DIGITS_DETECTION_DEMO_DIR`, default
    `<repo>/data/shapes-detection`)."""
    return Path(os.environ.get("DIGITS_DETECTION_DEMO_DIR") or REPO_ROOT / "data" / "shapes-detection")


def _positive_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        value = int(raw) if raw.strip() else default
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a whole number; set it to e.g. {default} or unset it.") from None
    if value < 1:
        raise ValueError(f"{name}={value} must be at least 1.")
    return value


def train_slots() -> int:
    """How many models train at once on the CPU (`DIGITS_TRAIN_SLOTS`, default 1).

    With GPUs visible there is one slot per GPU instead.
    """
    gpus = gpu_ids()
    return len(gpus) if gpus else _positive_int("DIGITS_TRAIN_SLOTS", 1)


def dataset_slots() -> int:
    """How many dataset jobs build at once (`DIGITS_DATASET_SLOTS`, default 2, as DIGITS)."""
    return _positive_int("DIGITS_DATASET_SLOTS", 2)


def max_image_pixels() -> int:
    """The largest image (width x height) a dataset reads (`DIGITS_MAX_IMAGE_PIXELS`, default 100 megapixels).

    Bigger files are skipped from their header, before decoding: a small PNG can claim 20000x20000
    pixels and take gigabytes to decode (a decompression bomb). PIL's own guard is set to the same limit."""
    return _positive_int("DIGITS_MAX_IMAGE_PIXELS", 100_000_000)


def upload_max_mb() -> int:
    """The largest archive a person may upload on the New dataset page, in MB (`DIGITS_UPLOAD_MAX_MB`,
    default 1024). Streamlit's own `server.maxUploadSize` must be at least this (.streamlit/config.toml;
    `make run` passes this value); the page shows the smaller of the two."""
    return _positive_int("DIGITS_UPLOAD_MAX_MB", 1024)


def extract_max_mb() -> int:
    """The most an uploaded archive may extract to, in MB (`DIGITS_EXTRACT_MAX_MB`, default 20480): a zip bomb
    is refused at this size."""
    return _positive_int("DIGITS_EXTRACT_MAX_MB", 20480)


def extract_max_files() -> int:
    """The most files and folders an uploaded archive may hold (`DIGITS_EXTRACT_MAX_FILES`, default 1000000)."""
    return _positive_int("DIGITS_EXTRACT_MAX_FILES", 1_000_000)


def gpu_ids() -> list[str]:
    """GPU ids the scheduler hands out (a model job takes one, or the several it names).

    `DIGITS_GPUS` (comma-separated ids, or `none` for CPU training); when unset,
    the GPUs nvidia-smi lists (none on a machine without NVIDIA's driver).
    """
    return [gpu["id"] for gpu in gpu_devices()]


def gpu_devices() -> list[dict]:
    """The GPUs a model can train on, for the form to list: {"id", "name", "memory"}
    ("memory" as nvidia-smi prints it, e.g. "81559 MiB"; None for ids given in `DIGITS_GPUS`)."""
    raw = os.environ.get("DIGITS_GPUS")
    if raw is None:
        return [dict(gpu) for gpu in _detected_gpus()]
    ids = [g.strip() for g in raw.split(",") if g.strip() and g.strip().lower() != "none"]
    return [{"id": g, "name": f"GPU {g}", "memory": None} for g in ids]


@functools.lru_cache(maxsize=1)
def _detected_gpus() -> tuple[dict, ...]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index,name,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    rows = [[part.strip() for part in line.split(",")] for line in out.splitlines() if line.strip()]
    return tuple({"id": row[0], "name": row[1] if len(row) > 1 else f"GPU {row[0]}",
                  "memory": row[2] if len(row) > 2 else None} for row in rows)


def cpu_devices() -> int:
    """`DIGITS_CPU_DEVICES=N` splits the CPU into N logical TensorFlow devices and trains a model
    mirrored across them (tf.distribute.MirroredStrategy), as it would across N GPUs. For testing
    the multi-device path on a machine without GPUs; default 1 (no split). Ignored when GPUs are visible."""
    return _positive_int("DIGITS_CPU_DEVICES", 1)


def _switched_off(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("0", "false", "no", "off")


def _switched_on(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def allow_custom_code() -> bool:
    """Whether a model may use a custom network: Python code that the worker runs
    (`DIGITS_ALLOW_CUSTOM_CODE`, default on as in DIGITS; `0` hides the option and refuses such jobs)."""
    return not _switched_off("DIGITS_ALLOW_CUSTOM_CODE")


def offline() -> bool:
    """`DIGITS_OFFLINE=1`: never reach the internet (no probe of storage.googleapis.com,
    no ImageNet weights download); pretrained weights must be in Keras' cache or a file."""
    return _switched_on("DIGITS_OFFLINE")


def settings() -> dict:
    """What the System page shows."""
    return {
        "DIGITS_JOBS_DIR": str(jobs_dir()),
        "DIGITS_DATA_ROOTS": os.pathsep.join(str(p) for p in data_roots()),
        "DIGITS_CREDENTIALS_DIR": str(credentials_dir()),
        "DIGITS_TRAIN_SLOTS": train_slots(),
        "DIGITS_DATASET_SLOTS": dataset_slots(),
        "DIGITS_UPLOAD_MAX_MB": upload_max_mb(),
        "DIGITS_EXTRACT_MAX_MB": extract_max_mb(),
        "DIGITS_EXTRACT_MAX_FILES": extract_max_files(),
        "DIGITS_MAX_IMAGE_PIXELS": max_image_pixels(),
        "DIGITS_LMDB_MAP_MB": lmdb_map_mb(),
        "DIGITS_GPUS": ",".join(gpu_ids()) or "none (training on the CPU)",
        "DIGITS_CPU_DEVICES": cpu_devices(),
        "DIGITS_ALLOW_CUSTOM_CODE": allow_custom_code(),
        "DIGITS_OFFLINE": offline(),
    }


def lmdb_map_mb() -> int:
    """The most one dataset database (an LMDB) may hold, in MB (`DIGITS_LMDB_MAP_MB`, default 1048576: 1 TiB).
    The file is sparse on Linux, so the default costs nothing; set it lower to cap what one dataset takes."""
    return _positive_int("DIGITS_LMDB_MAP_MB", 1 << 20)
