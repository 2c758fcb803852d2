"""What a person asks for when training a classifier: the form's fields, their
checks, and the submit that writes a Waiting job (it starts once its dataset is Done).
"""
from .errors import JobNotFound
from .fields import Field, FormErrors, convert
from .job_state import JobState
from .job_store import Job, JobStore
from .lr_policies import POLICIES
from .scheduler import Scheduler

TASK_NETWORKS = {"classification": ("lenet", "alexnet"), "segmentation": ("unet",)}
NETWORKS = tuple(n for names in TASK_NETWORKS.values() for n in names)
SOLVERS = ("sgd", "adam")

FIELDS = [
    Field("dataset", "Dataset", required=True, help="The id of an image classification dataset."),
    Field("name", "Model name", required=True),
    Field("group", "Group"),
    Field("network", "Network", kind="choice", default="lenet", choices=NETWORKS,
          choice_labels={"lenet": "LeNet", "alexnet": "AlexNet (small inputs)", "unet": "U-Net (segmentation)"},
          help="Blank: the first network for the dataset's task (LeNet, or U-Net for segmentation)."),
    Field("epochs", "Training epochs", kind="int", default=10, minimum=1, maximum=100000),
    Field("batch_size", "Batch size", kind="int", default=32, minimum=1, maximum=65536, advanced=True),
    Field("lr", "Base learning rate", kind="float", default=0.01, minimum=1e-9, maximum=10, advanced=True),
    Field("solver", "Solver", kind="choice", default="sgd", choices=SOLVERS, advanced=True,
          choice_labels={"sgd": "SGD (momentum 0.9)", "adam": "Adam"}),
    Field("lr_policy", "Learning rate policy", kind="choice", default="fixed", choices=tuple(POLICIES), advanced=True,
          choice_labels={"fixed": "Fixed", "step": "Step down"}),
    Field("lr_step_pct", "Step size (% of training)", kind="float", default=33.0, minimum=0.01, maximum=100,
          advanced=True, help="Step policy: the rate is multiplied by gamma every this much of training."),
    Field("lr_gamma", "Gamma", kind="float", default=0.1, minimum=0, maximum=1, advanced=True),
    Field("seed", "Random seed", kind="int", default=None, minimum=0, advanced=True,
          help="Blank: different weights each run. Set it to repeat a run."),
]


def check(raw: dict, store: JobStore) -> dict:
    """Validated, typed parameters, or FormErrors with a message for every bad field."""
    values, errors = convert(FIELDS, raw)
    if values.get("dataset") and (problem := _dataset_problem(values["dataset"], store)):
        errors["dataset"] = problem
    elif values.get("dataset"):
        task = store.get(values["dataset"]).spec.get("task", "classification")
        fitting = TASK_NETWORKS.get(task, NETWORKS)
        if not str(raw.get("network") or "").strip():
            values["network"] = fitting[0]
        elif values.get("network") and values["network"] not in fitting:
            errors["network"] = f"A {task} dataset needs one of: {', '.join(fitting)}."
    if errors:
        raise FormErrors(errors)
    return values


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
    params = check(raw, store)
    name, group, dataset_id = params.pop("name"), params.pop("group") or "", params.pop("dataset")
    job = store.create("model", name, params, parents=[dataset_id], group=group, task="classification")
    return Scheduler(store).submit(job)
