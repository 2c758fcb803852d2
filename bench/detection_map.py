"""Does a detection model learn on the demo data, and how fast (DetectNet's
users saw mAP stuck at 0)? The whole path a person takes, with real jobs:

- `download_data shapes-detection` writes the offline demo set (400 train and
  100 val 128x128 images, KITTI labels, circle/square/triangle);
- a dataset job builds it with the "Object detection (KITTI)" plugin
  (--size, pad as its default);
- a model job trains CenterNet in a worker with the New model form's
  defaults for a detection dataset (or --solver/--lr/--epochs/--batch-size);
- val mAP@0.5 (PASCAL VOC all-point), as the job records it after every epoch.

    python bench/detection_map.py [--size 64] [--epochs E] [--solver S] [--lr X] [--batch-size B]

Prints the mAP after each epoch with the training seconds so far, the epoch
and seconds at which it first passed 0.5, and `ratio val mAP / 0.5 target: X`
(target: above 1, in a few minutes of CPU). The baseline is the issue's
target: an untrained model scores about 0 here, so no ratio to it would mean
anything.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from digits_engine import job_actions, model_spec, plugin_dataset_spec  # noqa: E402
from digits_engine.job_state import JobState  # noqa: E402
from digits_engine.job_store import JobStore  # noqa: E402
from digits_engine.shapes_detection import make_shapes_detection  # noqa: E402

TARGET = 0.5


def done(job, what: str):
    if job_actions.wait(job, timeout=3 * 3600) is not JobState.DONE:
        sys.exit(f"the {what} job ended {job.state}: see {job.log_path}")
    return job


def make_dataset(store: JobStore, root: Path, size: int):
    options = {f"{split}_{kind}_folder": str(root / split / f"{kind}s") for split in ("train", "val")
               for kind in ("image", "label")}
    raw = {"name": "bench shapes-detection", **options, "width": size, "height": size,
           "custom_classes": ",".join((root / "classes.txt").read_text().split())}
    return done(plugin_dataset_spec.create("image-object-detection", raw, store), "dataset")


def train(store: JobStore, dataset, args):
    raw = {"dataset": dataset.id, "name": "bench centernet", "network": "centernet", "seed": 1}
    raw.update({k: v for k, v in (("epochs", args.epochs), ("solver", args.solver), ("lr", args.lr),
                                  ("batch_size", args.batch_size)) if v is not None})
    [job] = model_spec.create_all(raw, store)
    print(f"model: {job.params}", flush=True)
    return done(job, "model")


def report(job) -> None:
    seconds, passed = 0.0, None
    for row in job.metrics():
        if "val/mAP" not in row:
            continue
        seconds += row.get("time/epoch_seconds", 0.0)
        aps = " ".join(f"{k[7:]} {v:.3f}" for k, v in row.items() if k.startswith("val/AP_"))
        print(f"epoch {row['epoch']:>5g}  {seconds:7.1f} s  mAP {row['val/mAP']:.3f}  ({aps})", flush=True)
        if passed is None and row["val/mAP"] > TARGET:
            passed = (row["epoch"], seconds)
        final = row["val/mAP"]
    print(f"first above {TARGET}: " + (f"epoch {passed[0]:g}, after {passed[1]:.0f} s of training" if passed
                                       else "never"))
    print(f"final val mAP@0.5: {final:.3f}")
    print(f"ratio val mAP / {TARGET} target: {final / TARGET:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--solver")
    parser.add_argument("--lr")
    parser.add_argument("--batch-size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-detection-") as tmp:
        os.environ["DIGITS_JOBS_DIR"] = str(Path(tmp) / "jobs")
        store = JobStore(Path(tmp) / "jobs")
        root = make_shapes_detection(Path(tmp) / "shapes")
        started = time.perf_counter()
        dataset = make_dataset(store, root, args.size)
        model = train(store, dataset, args)
        print(f"dataset and training took {time.perf_counter() - started:.0f} s (wall)")
        report(model)


if __name__ == "__main__":
    main()
