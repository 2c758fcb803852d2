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


def demo_data_dir() -> Path:
    """Where `make run` writes the offline demo dataset (`DIGITS_DEMO_DIR`, default `<repo>/data/shapes`)."""
    return Path(os.environ.get("DIGITS_DEMO_DIR") or REPO_ROOT / "data" / "shapes")


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


def gpu_ids() -> list[str]:
    """GPU ids the scheduler hands out, one training job each.

    `DIGITS_GPUS` (comma-separated ids, or `none` for CPU training); when unset,
    the GPUs nvidia-smi lists (none on a machine without NVIDIA's driver).
    """
    raw = os.environ.get("DIGITS_GPUS")
    if raw is None:
        return list(_detected_gpus())
    return [g.strip() for g in raw.split(",") if g.strip() and g.strip().lower() != "none"]


@functools.lru_cache(maxsize=1)
def _detected_gpus() -> tuple[str, ...]:
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ()
    return tuple(line.strip() for line in out.splitlines() if line.strip())


def allow_custom_code() -> bool:
    return os.environ.get("DIGITS_ALLOW_CUSTOM_CODE", "").lower() in ("1", "true", "yes")


def settings() -> dict:
    """What the System page shows."""
    return {
        "DIGITS_JOBS_DIR": str(jobs_dir()),
        "DIGITS_DATA_ROOTS": os.pathsep.join(str(p) for p in data_roots()),
        "DIGITS_TRAIN_SLOTS": train_slots(),
        "DIGITS_DATASET_SLOTS": dataset_slots(),
        "DIGITS_GPUS": ",".join(gpu_ids()) or "none (training on the CPU)",
        "DIGITS_ALLOW_CUSTOM_CODE": allow_custom_code(),
    }
