"""The `digits` commands that use a trained model: classify (with --details;
the boxes of a detection model), infer (an inference job, or a plugin's
inference form), export and import. The ones that run a model import
TensorFlow only when called."""
import contextlib
import json
import os
import sys

from . import inference_results, inference_spec, job_actions, plugin_dataset_spec
from .atomic_json import read_json
from .errors import DigitsError
from .job_state import JobState
from .job_store import JobStore
from .job_summary import summarize


def is_infer_job(args) -> bool:
    return bool(args.list or args.images or args.dataset)


def infer_job(args, store: JobStore) -> int:
    """`digits infer MODEL (--list F | --images P... | --dataset ID)`: an inference job; non-zero unless Done."""
    if args.option or args.output:
        raise DigitsError("--option and --output are for a plugin's inference form; an inference job (--list, "
                          "--images or --dataset) writes its results in its job folder.")
    raw = {"model": args.model_id, "epoch": args.epoch, "list_file": args.list and os.path.abspath(args.list),
           "images": [os.path.abspath(p) for p in args.images or []], "dataset": args.dataset,
           "split": args.split, "name": args.name}
    job = inference_spec.create(raw, store)
    state = job_actions.wait(job) if args.wait else job.state
    summary = inference_results.summary(job)
    print(json.dumps(summary, indent=1) if args.json else inference_results.as_text(summary))
    return 0 if state is JobState.DONE or (not args.wait and state.is_active) else 1


def infer(args, store: JobStore) -> int:
    if is_infer_job(args):
        return infer_job(args, store)
    if not args.output:
        raise DigitsError("Give what to classify: --list FILE, --images PATH... or --dataset ID [--split val] "
                          "(an inference job); or, for a model trained on a plugin dataset, --option NAME=VALUE "
                          "and --output FILE.npz (required for the plugin's inference form).")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from .inference import infer_with_plugin  # imports TensorFlow
    result = infer_with_plugin(store.get(args.model_id), plugin_dataset_spec.parse_options(args.option), args.epoch)
    np.savez_compressed(args.output, inputs=result["inputs"], outputs=result["outputs"], ids=np.array(result["ids"]))
    summary = {"model": args.model_id, "count": len(result["ids"]), "ids": result["ids"], "output": args.output,
               "task": result["task"], "labels": result["labels"]}
    print(json.dumps(summary, indent=1) if args.json else f"{summary['count']} sample(s) -> {args.output}")
    return 0


def export(args, store: JobStore) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .model_export import export_report  # imports TensorFlow
    with contextlib.redirect_stdout(sys.stderr):  # stdout: the result alone
        report = export_report(store.get(args.model_id), args.format, args.output, args.epoch)
    checks = ", ".join(f"{what} within {diff:.1e}" for what, diff in report["checked"].items())
    print(json.dumps(report, indent=1) if args.json else f"{report['path']} ({report['bytes'] / 2 ** 20:.1f} MB, "
          f"epoch {report['epoch']}): predictions on {report['samples']} sample images match, {checks}")
    return 0


def imported(args, store: JobStore) -> dict:
    """The imported model's summary."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .model_import import import_model  # imports TensorFlow
    with contextlib.redirect_stdout(sys.stderr):
        return summarize(import_model(args.path, store, name=args.name, labels_file=args.labels))


def check_details_output(args) -> None:
    if len(args.images) != 1:
        raise DigitsError(f"--details explains one image; give one IMAGE, not {len(args.images)}.")
    folder = os.path.dirname(os.path.abspath(args.details))
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
        raise DigitsError(f"--details: cannot write {args.details}: the folder {folder} does not exist or is "
                          "not writable.")


def write_details(job, image: str, epoch, out: str, top_label: str) -> None:
    """--details: the image as the network saw it, Grad-CAM of its top class, and each layer's statistics."""
    import numpy as np

    from . import gradcam, inference, layer_stats
    from .atomic_json import read_json
    info = read_json(job.dir / "model.json")
    seen = inference.prepare(image, info["image"], info.get("crop"))
    model = inference.load_model(job, epoch)
    try:
        heatmap, why = gradcam.gradcam(model, seen), ""
    except DigitsError as exc:
        heatmap, why = np.zeros(seen.shape[:2], np.float32), str(exc)
    with open(out, "wb") as file:  # a file object: numpy would add ".npz" to a path without it
        np.savez_compressed(file, seen=seen.astype(np.uint8), heatmap=heatmap, gradcam_class=np.array(top_label),
                            gradcam_error=np.array(why), **layer_stats.pack(layer_stats.layer_stats(model, seen)))


def classify(args, store: JobStore) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow start-up chatter is not for people
    job = store.get(args.model_id)
    if job.kind == "model" and (read_json(job.dir / "model.json") or {}).get("task") == "detection":
        return detect(args, job)
    from .inference import classify  # imports TensorFlow
    if args.details:
        check_details_output(args)
    results = classify(job, args.images, top=args.top, epoch=args.epoch)
    if args.details and "predictions" in results[0]:
        write_details(job, args.images[0], args.epoch, args.details, results[0]["predictions"][0]["label"])
        results[0]["details"] = args.details
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=1))
        return 0 if all("predictions" in r for r in results) else 1
    for r in results:
        print(r["image"])
        for p in r.get("predictions", []):
            print(f"  {p['probability']:7.2%}  {p['label']}")
        if "details" in r:
            print(f"  details: {r['details']}")
        if "error" in r:
            print(f"  error: {r['error']}")
    return 0 if all("predictions" in r for r in results) else 1


def detect(args, job) -> int:
    """`digits classify` on a detection model: each image's boxes, best first, in the image's own pixels."""
    if args.details:
        raise DigitsError(f"--details shows Grad-CAM and layer statistics, which explain a classifier's answer; "
                          f"{job.name!r} is a detection model. Run `digits classify {job.id} IMAGE` without "
                          "--details for its boxes.")
    from .inference import MIN_SCORE, detect  # imports TensorFlow
    results = detect(job, args.images, epoch=args.epoch)
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=1))
    else:
        for r in results:
            print(r["image"])
            for d in r.get("detections", []):
                print(f"  {d['score']:7.2%}  {d['label']}  box " + "({:.1f}, {:.1f}, {:.1f}, {:.1f})".format(*d["box"]))
            if r.get("detections") == []:
                print(f"  nothing found with a score of at least {MIN_SCORE}")
            if "error" in r:
                print(f"  error: {r['error']}")
    return 0 if all("detections" in r for r in results) else 1
