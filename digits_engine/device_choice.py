"""Which devices a model job asks for, checked before it is written: the `gpus` field
(blank, one id, or several) and the `workers` field (machines of a multi-worker job).

No TensorFlow here: the form imports it.
"""
from . import config

DOCS = "docs/distributed.md"
ACCUMULATION_UNSUPPORTED = ("Batch accumulation does not work across several GPUs or machines (Keras' gradient "
                            "accumulation fails under tf.distribute): set it to 1 and raise the batch size instead, "
                            "which is split across the devices.")


def parse_gpus(text) -> list[str]:
    """"0, 1" -> ["0", "1"]; blank -> [] (the next free GPU)."""
    return [g.strip() for g in str(text or "").split(",") if g.strip()]


def check(values: dict) -> dict[str, str]:
    """{field: message} for device choices that cannot work on this machine. Normalises
    values["gpus"] to a plain comma list ("0,1") when it is fine."""
    errors = {}
    gpus = parse_gpus(values.get("gpus"))
    workers = values.get("workers") or 1
    batch_size = values.get("batch_size")
    if gpus and workers > 1:
        errors["gpus"] = ("A job with several workers uses the GPUs each machine shows: leave GPUs blank and set "
                          "CUDA_VISIBLE_DEVICES on each machine before `digits model join` (see "
                          f"{DOCS}).")
    elif gpus and (problem := gpus_problem(gpus)):
        errors["gpus"] = problem
    elif gpus:
        values["gpus"] = ",".join(gpus)
        if isinstance(batch_size, int) and batch_size < len(gpus):
            errors["batch_size"] = (f"The batch is split across the {len(gpus)} GPUs: the batch size must be at "
                                    f"least {len(gpus)}.")
    if (values.get("batch_accumulation") or 1) > 1 and (len(gpus) > 1 or workers > 1):
        errors["batch_accumulation"] = ACCUMULATION_UNSUPPORTED
    if workers > 1 and isinstance(batch_size, int) and batch_size < workers:
        errors["batch_size"] = (f"The batch is split across the {workers} workers: the batch size must be at "
                                f"least {workers}.")
    return errors


def gpus_problem(gpus: list[str]) -> str | None:
    """Why these GPU ids cannot be used here, or None."""
    available = config.gpu_ids()
    if not available:
        return ("This machine has no GPU TensorFlow can use; it trains on the CPU. Leave GPUs blank.")
    repeated = sorted({g for g in gpus if gpus.count(g) > 1})
    if repeated:
        return f"GPU {', '.join(repeated)} is listed more than once."
    unknown = [g for g in gpus if g not in available]
    if unknown:
        return (f"No GPU {', '.join(unknown)} on this machine: its GPUs are {', '.join(available)}. "
                "Leave it blank for the next free GPU.")
    return None
