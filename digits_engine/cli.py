"""The `digits` command line (also `python -m digits_engine`).

Everything the pages do, the CLI does too; `--json` makes every command print
JSON. Errors print a readable message and exit non-zero, never a traceback.
"""
import argparse
import contextlib
import getpass
import os
import json
import sys

from . import (cli_model_commands, dataset_health, dataset_show, dataset_spec, job_actions, model_spec,
               passwords, plugin_dataset_spec, s3_config)
from .plugins import registry
from .errors import DigitsError
from .fields import Field, FormErrors
from .job_state import JobState
from .job_store import JobStore
from .job_summary import summarize
from .scheduler import Scheduler


def _flag(field: Field) -> str:
    return "--" + field.name.replace("_", "-")


def _epoch(text: str) -> int | float:
    """--epoch 2 or 2.5: a snapshot's epoch, as snapshots.list_snapshots names them."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"an epoch is a number such as 2 or 2.5, got {text!r}") from None
    return int(value) if value.is_integer() else value


def _add_fields(parser: argparse.ArgumentParser, fields: list[Field]) -> None:
    for f in fields:
        extra = f" (one of: {', '.join(map(str, f.choices))})" if f.choices else ""
        default = "" if f.default is None or f.kind == "bool" else f" Default: {f.default}."
        text = f"{f.label}. {f.help}{extra}{default}".replace("%", "%%")
        if f.kind == "bool" and f.default is True:  # --shuffle / --no-shuffle; absent: the field's default
            parser.add_argument(_flag(f), dest=f.name, action=argparse.BooleanOptionalAction, help=text)
        elif f.kind == "bool":
            parser.add_argument(_flag(f), dest=f.name, action="store_true", help=text)
        else:
            parser.add_argument(_flag(f), dest=f.name, metavar=f.name.upper(), help=text)


def _add_s3_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--s3-config", metavar="FILE",
                        help="an upload_config.cfg ([S3 Config] endpoint, accesskey, secretkey, bucket) with the S3 "
                             "keys; without it the keys come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. "
                             "The secret key is never taken from the command line.")


def _s3_keys(args, raw: dict) -> dict:
    """S3 keys (and endpoint/bucket when not given) from --s3-config or the AWS environment variables."""
    config = s3_config.read_config(args.s3_config) if args.s3_config else None
    keys = {
        "s3_access_key": raw.get("s3_access_key") or (config and config.access_key) or os.environ.get("AWS_ACCESS_KEY_ID"),
        "s3_secret_key": (config and config.secret_key) or os.environ.get("AWS_SECRET_ACCESS_KEY"),
    }
    if config and dataset_spec.source_of(raw) == "s3":
        keys["s3_endpoint"] = raw.get("s3_endpoint") or config.endpoint
        keys["s3_bucket"] = raw.get("s3_bucket") or config.bucket
    return keys


def _add_output(parser: argparse.ArgumentParser, wait: bool = False) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")
    if wait:
        parser.add_argument("--wait", action="store_true", help="return when the job ends; non-zero exit unless Done")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="digits", description="Build datasets, train and use image models.")
    sub = parser.add_subparsers(dest="command", required=True)

    dataset = sub.add_parser("dataset", help="datasets").add_subparsers(dest="action", required=True)
    create = dataset.add_parser("create", help="create an image classification dataset from a folder, "
                                               "text-file lists, an archive or S3")
    _add_fields(create, [f for f in dataset_spec.FIELDS if f.kind != "secret"])
    _add_s3_config(create)
    create.add_argument("--archive", metavar="FILE",
                        help="a .zip, .tar or .tar.gz of class folders (optionally in one top folder): extracted "
                             "safely under the jobs folder, then built like --folder (the web form's upload)")
    create.add_argument("--plugin", metavar="ID", help="build the dataset with this data plugin (`digits plugins list`)")
    create.add_argument("--option", action="append", metavar="NAME=VALUE", help="a field of the plugin's form; repeat")
    _add_output(create, wait=True)
    show = dataset.add_parser("show", help="a dataset's counts per split and class, skipped files and health")
    show.add_argument("job_id")
    show.add_argument("--threshold", type=int, default=dataset_health.DEFAULT_THRESHOLD, metavar="N",
                      help="report classes with fewer than N training images. "
                           f"Default: {dataset_health.DEFAULT_THRESHOLD}.")
    _add_output(show)

    infer = sub.add_parser("infer", help="classify many images in a background job (--list, --images or "
                                          "--dataset), or run a model on its plugin's inference form (--option)")
    infer.add_argument("model_id")
    infer.add_argument("--list", metavar="FILE", help="a text file of `path [label]` lines (label: a class name or "
                                                      "index); relative paths are relative to the file's folder")
    infer.add_argument("--images", nargs="+", metavar="IMAGE", help="image files on this server")
    infer.add_argument("--dataset", metavar="ID", help="classify a split of this dataset")
    infer.add_argument("--split", default="val", help="the dataset's split: train, val or test. Default: val.")
    infer.add_argument("--name", help="the inference job's name. Default: the model's and the images'.")
    infer.add_argument("--option", action="append", metavar="NAME=VALUE", help="a field of the inference form; repeat")
    infer.add_argument("--output", metavar="FILE.npz", help="with --option: where to write inputs and outputs (npz)")
    infer.add_argument("--epoch", type=_epoch, default=None,
                       help="the snapshot to use (2, or 2.5 with a fractional snapshot interval). Default: the latest.")
    _add_output(infer, wait=True)

    plugins = sub.add_parser("plugins", help="installed plugins").add_subparsers(dest="action", required=True)
    _add_output(plugins.add_parser("list", help="every data and view plugin, with its version or its error"))

    model = sub.add_parser("model", help="models").add_subparsers(dest="action", required=True)
    train = model.add_parser("train", help="train a classifier on a dataset")
    _add_fields(train, model_spec.FIELDS)
    _add_output(train, wait=True)
    text = ("run this machine's worker of a model created with --workers N, in the foreground; TF_CONFIG gives "
            "the cluster and this worker's index (docs/distributed.md)")
    join = model.add_parser("join", help=text, description=text)
    join.add_argument("job_id")
    _add_output(join)

    jobs = sub.add_parser("jobs", help="list and manage jobs").add_subparsers(dest="action", required=True)
    _add_output(jobs.add_parser("list", help="every job, newest first"))
    for action, text in (("show", "one job in full"), ("abort", "stop a job"), ("delete", "remove a job and its files"),
                         ("clone", "submit a new job with the same parameters"), ("rename", "give a job a new name"),
                         ("resume", "continue an aborted or dead model from its last epoch snapshot")):
        p = jobs.add_parser(action, help=text)
        p.add_argument("job_id")
        if action == "rename":
            p.add_argument("name", help="the new name")
        _add_output(p, wait=action in ("clone", "resume"))
        if action == "clone":
            _add_s3_config(p)

    export = sub.add_parser("export", help="write a model as an archive, a SavedModel or a TFLite file, checked")
    export.add_argument("model_id")
    export.add_argument("--format", choices=("archive", "savedmodel", "tflite"), default="archive",
                        help="archive: a .zip or .tar.gz of model.keras, a SavedModel, labels, info.json and a README; "
                             "savedmodel: a folder, or a .zip/.tar.gz of it; tflite: a .tflite file. Default: archive.")
    export.add_argument("-o", "--output", required=True, metavar="PATH", help="where to write it")
    export.add_argument("--epoch", type=_epoch, default=None, help="the snapshot to export. Default: the latest.")
    _add_output(export)
    imported = sub.add_parser("import", help="a model archive made by `digits export` (or a .keras file and "
                                             "--labels) as a new model that classifies and fine-tunes")
    imported.add_argument("path", metavar="PATH", help="a .zip or .tar.gz made by `digits export`, or a .keras file")
    imported.add_argument("--labels", metavar="FILE", help="the class names, one a line (needed with a .keras file)")
    imported.add_argument("--name", help="the new model's name. Default: the source model's, or the file's.")
    _add_output(imported)

    classify = sub.add_parser("classify", help="classify images with a trained model")
    classify.add_argument("model_id")
    classify.add_argument("images", nargs="+", metavar="IMAGE")
    classify.add_argument("--top", type=int, default=5, help="how many classes to list per image. Default: 5.")
    classify.add_argument("--epoch", type=_epoch, default=None,
                       help="the snapshot to use (2, or 2.5 with a fractional snapshot interval). Default: the latest.")
    classify.add_argument("--details", metavar="OUT.npz",
                          help="with one IMAGE: write what the network saw and did to this .npz file: `seen` (the "
                               "image after resize, channels and crop, uint8), `heatmap` (Grad-CAM of the top class, "
                               "H x W in 0..1; `gradcam_error` says why when it is all zeros), `gradcam_class`, and "
                               "the statistics and activations of each layer (`layers`, JSON; read them with "
                               "digits_engine.layer_stats.unpack). The JSON output gains \"details\": the path.")
    _add_output(classify)

    sub.add_parser("hash-password", help="print a hash of a sign-in password to put in .streamlit/secrets.toml "
                                         "instead of the password itself (asks for it; or reads one line on stdin)")
    return parser


def _hash_password() -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise DigitsError("The two passwords differ; run it again.")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise DigitsError("Choose a password of at least 8 characters.")
    print(passwords.hash_password(password))
    return 0


def _print_job(summary: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(summary, indent=1))
        return
    line = f"{summary['id']}  {summary['kind']:<7}  {summary['status']:<11}  {summary['progress']:>5.0%}  {summary['name']}"
    print(line + (f"\n  error: {summary['error']}" if summary.get("error") else "")
          + (f"\n  note: {summary['note']}" if summary.get("note") and summary["status"] == "Waiting" else ""))
    for key, value in (summary.get("metrics") or {}).items():
        print(f"  {key} = {value:.6g}" if isinstance(value, float) else f"  {key} = {value}")


def _submitted(job, args) -> int:
    if getattr(args, "wait", False):
        state = job_actions.wait(job)
        _print_job(summarize(job), args.json)
        return 0 if state is JobState.DONE else 1
    _print_job(summarize(job), args.json)
    return 0


def _submitted_all(jobs, args) -> int:
    """A sweep: every job, as a JSON list with --json; with --wait, non-zero unless all ended Done."""
    states = [job_actions.wait(job) for job in jobs] if args.wait else []
    summaries = [summarize(job) for job in jobs]
    if args.json:
        print(json.dumps(summaries, indent=1))
    for summary in [] if args.json else summaries:
        _print_job(summary, False)
    return 0 if all(state is JobState.DONE for state in states) else 1 if states else 0


def _field_values(args, fields) -> dict:
    return {f.name: getattr(args, f.name) for f in fields}


def _jobs(args, store: JobStore) -> int:
    Scheduler(store).schedule()  # records dead workers before anything is shown
    if args.action == "list":
        summaries = [summarize(j, with_params=False) for j in store.list()]
        if args.json:
            print(json.dumps(summaries, indent=1))
        for s in [] if args.json else summaries:
            _print_job(s, False)
        return 0
    job = store.get(args.job_id)
    if args.action == "show":
        _print_job(summarize(job), args.json)
    elif args.action == "abort":
        job_actions.abort(job, store)
        job_actions.wait(job, timeout=60)
        _print_job(summarize(job), args.json)
    elif args.action == "delete":
        summary = summarize(job)
        job_actions.delete(job, store)
        print(json.dumps({"deleted": summary["id"]}) if args.json else f"deleted {summary['id']} {summary['name']}")
    elif args.action == "rename":
        _print_job(summarize(job_actions.rename(job, args.name)), args.json)
    elif args.action == "resume":
        return _submitted(job_actions.resume(job, store), args)
    elif args.action == "clone":
        return _submitted(job_actions.clone(job, store, secrets=_s3_keys(args, job.params)), args)
    return 0


def _join(args, store: JobStore) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from .join import join  # imports TensorFlow when it trains
    with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):  # stdout: the JSON alone
        result = join(store.get(args.job_id), store)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"worker {result['worker']} of {result['workers']} of job {result['job']} ended {result['state']}"
              + (f"\n  error: {result['error']}" if result["error"] else ""))
    return 0 if result["state"] == JobState.DONE.value else 1


def _plugins(args) -> int:
    rows = [{"kind": i.kind, "id": i.id, "title": i.title, "package": i.package, "version": i.version,
             "entry_point": f"{i.name} = {i.value}", "error": i.error}
            for kind in registry.GROUPS for i in registry.discover(kind)]
    if args.json:
        print(json.dumps(rows, indent=1))
    for r in [] if args.json else rows:
        print(f"{r['kind']:<5} {r['id']:<28} {r['package']} {r['version']}" + (f"  FAILED: {r['error']}" if r["error"] else ""))
    return 0


def _run(args) -> int:
    if args.command == "hash-password":
        return _hash_password()
    store = JobStore()
    if args.command == "dataset" and args.action == "show":
        info = dataset_show.describe(store.get(args.job_id), args.threshold)
        print(json.dumps(info, indent=1) if args.json else dataset_show.as_text(info))
        return 0
    if args.command == "dataset" and args.plugin:
        raw = {"name": args.name, "group": args.group, **plugin_dataset_spec.parse_options(args.option)}
        return _submitted(plugin_dataset_spec.create(args.plugin, raw, store), args)
    if args.command == "plugins":
        return _plugins(args)
    if args.command == "infer":
        return cli_model_commands.infer(args, store)
    if args.command == "dataset":
        raw = _field_values(args, [f for f in dataset_spec.FIELDS if f.kind != "secret"])
        if args.archive:
            raw[dataset_spec.ARCHIVE] = os.path.abspath(args.archive)
        return _submitted(dataset_spec.create({**raw, **_s3_keys(args, raw)}, store), args)
    if args.command == "model" and args.action == "join":
        return _join(args, store)
    if args.command == "model":
        jobs = model_spec.create_all(_field_values(args, model_spec.FIELDS), store)
        return _submitted(jobs[0], args) if len(jobs) == 1 else _submitted_all(jobs, args)
    if args.command == "jobs":
        return _jobs(args, store)
    if args.command == "export":
        return cli_model_commands.export(args, store)
    if args.command == "import":
        summary = cli_model_commands.imported(args, store)
        _print_job(summary, args.json)
        if summary.get("note") and not args.json:
            print(f"  note: {summary['note']}")
        return 0
    return cli_model_commands.classify(args, store)


# Where the CLI takes S3 keys from; the secret key has no option (it would show in `ps`).
KEY_HINTS = {
    "s3_access_key": "Give it with --s3-access-key, in an --s3-config file (accesskey) or in AWS_ACCESS_KEY_ID.",
    "s3_secret_key": "Give it in an --s3-config file (secretkey) or in AWS_SECRET_ACCESS_KEY; "
                     "it is never taken from the command line.",
}


INFER_FLAGS = {"model": "MODEL_ID", "list_file": "--list", "source": "--list, --images or --dataset"}


def _flag_of(name: str, args) -> str:
    """How a person gives field `name` on this command line."""
    if name in dataset_spec.SECRETS:
        return ""
    if args.command == "infer" and cli_model_commands.is_infer_job(args):
        return f"{INFER_FLAGS.get(name, '--' + name.replace('_', '-'))}: "
    if getattr(args, "plugin", None) or args.command == "infer":  # a plugin's fields are --option NAME=VALUE
        return f"--option {name}: " if name not in ("name", "group") else f"--{name}: "
    return f"--{name.replace('_', '-')}: "


def _report(error: Exception, args) -> None:
    as_json = getattr(args, "json", False)
    fields = error.errors if isinstance(error, FormErrors) else {}
    fields = {name: f"{message} {KEY_HINTS[name]}" if name in KEY_HINTS else message
              for name, message in fields.items()}
    if as_json:
        print(json.dumps({"error": str(FormErrors(fields)) if fields else str(error), "fields": fields}))
    if fields:
        for name, message in fields.items():
            print(f"error: {_flag_of(name, args)}{message}", file=sys.stderr)
    else:
        print(f"error: {error}", file=sys.stderr)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except (DigitsError, ValueError) as error:
        _report(error, args)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
