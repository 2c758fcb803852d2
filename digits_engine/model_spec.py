"""What a person asks for when training a classifier: the form's fields, their
checks, and the submit that writes a Waiting job (it starts once its dataset is Done).
"""
import itertools

from . import augmentation, data_options, device_choice, lr_policies
from . import network_choice
from .errors import JobNotFound
from .fields import Field, FormErrors, convert
from .job_state import JobState
from .job_store import Job, JobStore
from .lr_policies import POLICIES
from .scheduler import Scheduler

TASK_NETWORKS = {"classification": ("lenet", "alexnet", "googlenet", "resnet18", "resnet50", "mobilenetv2"),
                 "segmentation": ("unet",), "detection": ("centernet",)}
# "previous" (fine-tune a model) and "custom" (Python code) suit every task
NETWORKS = tuple(n for names in TASK_NETWORKS.values() for n in names) + network_choice.SOURCES
NETWORK_LABELS = {"lenet": "LeNet", "alexnet": "AlexNet (small inputs)", "googlenet": "GoogLeNet (Inception v1)",
                  "resnet18": "ResNet-18", "resnet50": "ResNet-50 (Keras application)",
                  "mobilenetv2": "MobileNetV2 (Keras application)", "unet": "U-Net (segmentation)",
                  "centernet": "CenterNet (detection)",
                  **network_choice.SOURCE_LABELS}
CUSTOM_NETWORK_EXAMPLE = network_choice.CUSTOM_NETWORK_EXAMPLE
# Solver names are a contract (job params, CLI, training/solvers.py imports them): keep them keras-free here.
SOLVERS = ("sgd", "nesterov", "momentum", "adagrad", "rmsprop", "adadelta", "adam", "adamw")
SOLVER_LABELS = {
    "sgd": "SGD (momentum 0.9, as DIGITS' Caffe SGD)",
    "nesterov": "Nesterov (SGD, Nesterov momentum 0.9)",
    "momentum": "Momentum (SGD, momentum 0.9: the same as SGD here)",
    "adagrad": "AdaGrad",
    "rmsprop": "RMSProp (decay 0.99)",
    "adadelta": "AdaDelta (rho 0.95)",
    "adam": "Adam",
    "adamw": "AdamW (decoupled weight decay)",
}

WATCHABLE = ("val/loss", "val/accuracy", "val/mean_iou", "val/mAP")
TASK_WATCH = {"detection": "val/mAP"}  # a blank watch metric's default where val/loss is not the one to keep
# A blank field's value for a dataset of the task, where the field's own default would not do: CenterNet
# barely learns with SGD at 0.01 in 10 epochs (val mAP 0.39 on the shapes demo; 0.8 with these in 15;
# bench/detection_map.py).
TASK_DEFAULTS = {"detection": {"solver": "adam", "lr": 0.003, "batch_size": 16, "epochs": 15,
                               "aug_flip": "horizontal"}}

FIELDS = [
    Field("dataset", "Dataset", required=True, help="The id of an image classification dataset."),
    Field("name", "Model name", required=True),
    Field("group", "Group"),
    Field("network", "Network", kind="choice", default="lenet", choices=NETWORKS,
          choice_labels=NETWORK_LABELS,
          help="Blank: the first network for the dataset's task (LeNet, or U-Net for segmentation)."),
    Field("epochs", "Training epochs", kind="int", default=10, minimum=1, maximum=100000),
    Field("batch_size", "Batch size", kind="int", default=32, minimum=1, maximum=65536, advanced=True,
          help="Several, comma-separated, make one model per value (a sweep)."),
    Field("lr", "Base learning rate", kind="float", default=0.01, minimum=1e-9, maximum=10, advanced=True,
          help="Several, comma-separated (0.01, 0.02), make one model per value (a sweep), as DIGITS did."),
    Field("solver", "Solver", kind="choice", default="sgd", choices=SOLVERS, advanced=True,
          choice_labels=SOLVER_LABELS),
    Field("weight_decay", "Weight decay", kind="float", default=0.0, minimum=0, maximum=1, advanced=True,
          help="Shrinks the weights by rate × decay each step (decoupled, as AdamW does; Keras' weight_decay for "
               "the other solvers). 0: none. AdamW without it is Adam; 0.004 is Keras' AdamW default."),
    Field("batch_accumulation", "Batch accumulation", kind="int", default=1, minimum=1, maximum=1024, advanced=True,
          help="Add up the gradients of this many batches before each update: an effective batch of "
               "batch size × this, in the memory of one batch."),
    Field("lr_policy", "Learning rate policy", kind="choice", default="fixed", choices=tuple(POLICIES), advanced=True,
          choice_labels=lr_policies.LABELS,
          help="DIGITS' policies, in percent p of training: fixed lr; step lr·γ^floor(p/step); multistep lr·γ^k "
               "(k step values ≤ p); exp lr·γ^p; inv lr·(1+γ·p)^−power; poly lr·(1−p/100)^power; "
               "sigmoid lr/(1+exp(γ·(p−step)))."),
    Field("lr_step_pct", "Step size (% of training)", kind="float", default=None, minimum=0, maximum=100,
          advanced=True, help="Step policy: the rate is multiplied by gamma every this much of training (blank: 33). "
                              "Sigmoid policy: where the rate has halved (blank: 50)."),
    Field("lr_gamma", "Gamma", kind="float", default=None, advanced=True,
          help="Blank: the policy's default: step 0.1, multistep 0.5, exp 0.95, inv 0.1, sigmoid 0.1. "
               "Step, multistep and exp take 0 to 1; a negative sigmoid gamma makes the rate rise."),
    Field("lr_power", "Power", kind="float", default=None, minimum=0, maximum=100, advanced=True,
          help="Blank: the policy's default: inv 0.5, poly 3."),
    Field("lr_multistep_values", "Multistep values (% of training)", kind="text", default="50,85", advanced=True,
          help="Multistep policy: the rate is multiplied by gamma when training reaches each of these percents "
               "(increasing, comma-separated). Blank: 50,85."),
    Field("seed", "Random seed", kind="int", default=None, minimum=0, advanced=True,
          help="Blank: different weights each run. Set it to repeat a run."),
    Field("watch_metric", "Metric for the best snapshot and early stopping", kind="choice", default="val/loss",
          choices=WATCHABLE, advanced=True,
          help="The snapshot where it was best is kept as best.keras. Validation accuracy is for classifiers, "
               "mean IoU for segmentation, mAP for detection (blank: val/mAP for detection, else val/loss)."),
    Field("early_stop_patience", "Early stopping patience (epochs)", kind="int", default=None, minimum=1,
          advanced=True, help="Stop when the metric has not improved for this many epochs. Blank: never stop early."),
    # -- where the network comes from (pretrained, previous, custom) --
    Field("pretrained", "Start from ImageNet weights", kind="bool", default=False, advanced=True,
          help="ResNet-50 and MobileNetV2: start from Keras' ImageNet weights (downloaded once into Keras' cache, "
               "or the weights file below) instead of random ones; the pixels are then prepared as ImageNet's were."),
    Field("weights_file", "Weights file", kind="path", advanced=True,
          help="With pretrained weights: a Keras .h5 weights file of the network without its top, e.g. "
               "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5, for a server without internet. "
               "Blank: Keras' ImageNet weights."),
    Field("previous_model", "Previous model", advanced=True,
          help="Network \"previous\": the id of the model to fine-tune. Its weights are the start; the class "
               "layer (\"logits\") is replaced when the class count differs."),
    Field("previous_epoch", "Previous model's epoch", kind="int", default=None, minimum=1, advanced=True,
          help="Network \"previous\": the epoch snapshot to start from. Blank: its last epoch."),
    Field("custom_code", "Custom network code", advanced=True,
          help="Network \"custom\": Python defining build_model(input_shape, num_classes) that returns a "
               "keras.Model, run only by the training worker. Use Keras' own layers (the snapshots must load "
               "without the code) and name the last layer \"logits\" to make it fine-tunable. "
               "On the command line: --custom-code \"$(cat net.py)\"."),
    # -- data: intervals, shuffle, mean, crop, augmentation --
    Field("validation_interval", "Validation interval (epochs)", kind="float", default=1.0, maximum=100000,
          advanced=True, help="Validate every this many epochs; fractions validate within an epoch (0.5: twice)."),
    Field("snapshot_interval", "Snapshot interval (epochs)", kind="float", default=1.0, maximum=100000,
          advanced=True, help="Save a snapshot every this many epochs (0.5: twice an epoch). The last epoch "
                              "always gets one."),
    Field("shuffle", "Shuffle the training data", kind="bool", default=True, advanced=True,
          help="A new order of the training images every epoch."),
    Field("mean_subtraction", "Mean subtraction", kind="choice", default="pixel", choices=("image", "pixel", "none"),
          advanced=True, choice_labels={"image": "Image (subtract the mean image)",
                                        "pixel": "Pixel (subtract each channel's mean)", "none": "None (scale to 0..1)"},
          help="What is subtracted from every image before the network: the training set's mean image, or its "
               "mean colour (both then divided by each channel's standard deviation); none only scales to 0..1."),
    Field("crop_size", "Crop size (px)", kind="int", default=None, minimum=1, maximum=4096, advanced=True,
          help="Train on random crop-size squares of each image, validate and classify on the centre square. "
               "Blank: the whole image."),
    Field("aug_flip", "Flips", kind="choice", default="none", choices=augmentation.FLIPS, advanced=True,
          choice_labels={"none": "None", "horizontal": "Horizontal", "vertical": "Vertical",
                         "both": "Horizontal and vertical"},
          help="Each training image flipped with probability 1/2 (both: each way, independently)."),
    Field("aug_rot90", "Random 90° rotations", kind="bool", default=False, advanced=True,
          help="Each training image turned by 0, 90, 180 or 270° (0 or 180° for non-square images)."),
    Field("aug_rotation", "Rotation (max degrees)", kind="float", default=0.0, minimum=0, maximum=180, advanced=True,
          help="Turn each training image by a random angle up to this, either way (edges filled by reflection)."),
    Field("aug_scale", "Scale (max fraction)", kind="float", default=0.0, minimum=0, maximum=0.9, advanced=True,
          help="Zoom each training image in or out by up to this fraction (0.1: 90% to 110%), same size out."),
    Field("aug_noise", "Noise (std, fraction of 255)", kind="float", default=0.0, minimum=0, maximum=1,
          advanced=True, help="Add Gaussian noise of this standard deviation (0.02: about 5 grey levels)."),
    Field("aug_hue", "Hue shift (max fraction)", kind="float", default=0.0, minimum=0, maximum=0.5, advanced=True,
          help="Turn each colour image's hue by up to this fraction of the colour circle. Grey images: ignored."),
    Field("aug_saturation", "Saturation (max fraction)", kind="float", default=0.0, minimum=0, maximum=1,
          advanced=True, help="Scale each colour image's saturation by 1 ± up to this. Grey images: ignored."),
    Field("aug_value", "Value (max fraction)", kind="float", default=0.0, minimum=0, maximum=1, advanced=True,
          help="Scale each colour image's brightness (HSV value) by 1 ± up to this. Grey images: ignored."),
    Field("aug_contrast", "Contrast (max fraction)", kind="float", default=0.0, minimum=0, maximum=1, advanced=True,
          help="Scale each image's contrast (distance from its mean colour) by 1 ± up to this."),
    # -- devices --
    Field("gpus", "GPUs", advanced=True,
          help="Blank: the next free GPU (or the CPU on a machine without one). One id (1): that GPU. "
               "Several (0,1): trained on all of them with tf.distribute.MirroredStrategy, the batch split "
               "across them (the batch size stays the whole batch)."),
    Field("workers", "Machines (workers)", kind="int", default=1, minimum=1, maximum=1024, advanced=True,
          help="Machines/processes for tf.distribute.MultiWorkerMirroredStrategy. More than 1: the job waits "
               "until you start `digits model join JOB_ID` on each machine (docs/distributed.md)."),
]


def check(raw: dict, store: JobStore) -> dict:
    """Validated, typed parameters, or FormErrors with a message for every bad field."""
    values, errors = convert(FIELDS, with_task_defaults(raw, store))
    for name, message in lr_policies.check(values).items():
        errors.setdefault(name, message)
    if "lr_multistep_values" not in errors and values.get("lr_multistep_values"):
        values["lr_multistep_values"] = lr_policies.format_multistep(values["lr_multistep_values"])
    if values.get("dataset") and (problem := _dataset_problem(values["dataset"], store)):
        errors["dataset"] = problem
    elif values.get("dataset"):
        task = store.get(values["dataset"]).spec.get("task", "classification")
        fitting = TASK_NETWORKS.get(task, NETWORKS)
        if not str(raw.get("network") or "").strip():
            values["network"] = fitting[0]
        elif values.get("network") and values["network"] not in fitting + network_choice.SOURCES:
            errors["network"] = f"A {task} dataset needs one of: {', '.join(fitting)}."
        if not str(raw.get("watch_metric") or "").strip() and task in TASK_WATCH:
            values["watch_metric"] = TASK_WATCH[task]
        own = {"classification": "val/accuracy", "segmentation": "val/mean_iou", "detection": "val/mAP"}.get(task)
        if own and values.get("watch_metric") not in ("val/loss", own, None):
            errors["watch_metric"] = (f"A {task} model does not report {values['watch_metric']}; "
                                      f"watch val/loss or {own}.")
        if task == "detection":
            errors.update(_detection_refusals(values))
    # -- cross-field checks: network source, data options, devices (each in its own module) --
    found = [network_choice.check(values, store), device_choice.check(values)]
    if "dataset" not in errors:
        found.append(data_options.check(values, store))
    for name, message in (item for problems in found for item in problems.items()):
        errors.setdefault(name, message)
    if errors:
        raise FormErrors(errors)
    return values


def task_defaults(task: str) -> dict:
    """The values a blank field takes for a dataset of `task`, where they differ from the fields' own."""
    return TASK_DEFAULTS.get(task, {})


def with_task_defaults(raw: dict, store: JobStore) -> dict:
    """`raw` with its blank fields set to the task defaults of its dataset's task (unchanged without one)."""
    dataset = str(raw.get("dataset") or "").strip()
    if not dataset or _dataset_problem(dataset, store):
        return raw
    defaults = task_defaults(store.get(dataset).spec.get("task", "classification"))
    return {**raw, **{name: value for name, value in defaults.items() if not str(raw.get(name) or "").strip()}}


def _detection_refusals(values: dict) -> dict:
    """What a detection model cannot use yet: data options that move pixels without their boxes,
    networks other than CenterNet (fine-tuned or custom), and training on several machines."""
    refused = [name for name in augmentation.OPTIONS if name != "aug_flip"
               and values.get(name) and values.get(name) != "none"] + (["crop_size"] if values.get("crop_size") else [])
    errors = {name: "Not available for detection (the boxes would not follow): leave it blank or 0; flips are."
              for name in refused}
    if values.get("network") in network_choice.SOURCES:  # their models would lack CenterNet's own loss
        errors["network"] = "A detection model trains the standard CenterNet for now; choose centernet."
    if (values.get("workers") or 1) > 1:  # the several-machine loop knows classification and segmentation only
        errors["workers"] = ("A detection model trains on one machine for now (its GPUs may be several): "
                             "set Machines to 1.")
    return errors


def available_networks(task: str) -> tuple:
    """The network choices the form offers for a `task` dataset: its standard networks, then
    "previous", then "custom" unless DIGITS_ALLOW_CUSTOM_CODE=0."""
    sources = tuple(s for s in network_choice.SOURCES if s != "custom" or not network_choice.custom_refused())
    return TASK_NETWORKS.get(task, NETWORKS) + sources


def _dataset_problem(dataset_id: str, store: JobStore) -> str | None:
    try:
        dataset = store.get(dataset_id)
    except JobNotFound:
        return f"No dataset with id {dataset_id!r}."
    if dataset.kind != "dataset":
        return f"{dataset.id} is a model, not a dataset."
    if dataset.state in (JobState.ERROR, JobState.ABORTED):
        return f"Dataset {dataset.name!r} ended {dataset.state}; pick a dataset that is Done."
    return None


def create(raw: dict, store: JobStore | None = None) -> Job:
    """Check the input, write the job (a child of its dataset), and hand it to the scheduler."""
    store = store or JobStore()
    return _submit(check(raw, store), store)


def _submit(params: dict, store: JobStore) -> Job:
    name, group, dataset_id = params.pop("name"), params.pop("group") or "", params.pop("dataset")
    task = store.get(dataset_id).spec.get("task", "classification")
    job = store.create("model", name, params, parents=[dataset_id], group=group, task=task)
    return Scheduler(store).submit(job)


SWEEPS = {"lr": "learning_rate", "batch_size": "batch_size"}  # field -> the name DIGITS gave it in job names


def sweep(raw: dict) -> list[dict]:
    """DIGITS' sweeps: comma-separated learning rates and batch sizes give one model per combination,
    named "<name> learning_rate:x batch_size:y" and grouped under the name."""
    lists = {name: [v.strip() for v in str(raw[name]).split(",") if v.strip()]
             for name in SWEEPS if isinstance(raw.get(name), str) and "," in raw[name]}
    if not lists:
        return [raw]
    runs = []
    for combination in itertools.product(*lists.values()):
        values = dict(zip(lists, combination))
        suffix = " ".join(f"{SWEEPS[k]}:{v}" for k, v in values.items())
        runs.append({**raw, **values, "name": f"{(raw.get('name') or '').strip()} {suffix}".strip(),
                     "group": (raw.get("group") or "").strip() or (raw.get("name") or "").strip()})
    return runs


def create_all(raw: dict, store: JobStore | None = None) -> list[Job]:
    """create(), or a sweep's jobs: every combination is checked before any is submitted."""
    store = store or JobStore()
    runs = sweep(raw)
    checked = []
    for run in runs:
        try:
            checked.append(check(run, store))
        except FormErrors as exc:
            if len(runs) == 1:
                raise
            where = ", ".join(f"{SWEEPS[f]} {run[f]}" for f in SWEEPS if run.get(f) is not None)
            raise FormErrors({k: f"{v} (sweep: {where})" for k, v in exc.errors.items()}) from None
    return [_submit(params, store) for params in checked]
