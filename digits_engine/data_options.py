"""Cross-field checks of a model's data options (intervals, crop) against each
other and its dataset, for the model form (no TensorFlow)."""
from .atomic_json import read_json
from .job_store import JobStore

NEEDS_MULTIPLE_OF_4 = ("unet",)  # two 2x poolings that must come back to the input size


def check(values: dict, store: JobStore) -> dict[str, str]:
    """{field: message} for each data option that cannot work; `values["dataset"]` must be a dataset."""
    found = {}
    for name in ("validation_interval", "snapshot_interval"):
        value = values.get(name)
        if value is not None and value <= 0:
            found[name] = f"The interval must be more than 0 epochs (e.g. 0.5: twice an epoch), got {value:g}."
    crop = values.get("crop_size")
    if crop:
        found.update(_crop_problems(crop, values, store))
    return found


def _crop_problems(crop: int, values: dict, store: JobStore) -> dict:
    if values.get("network") in NEEDS_MULTIPLE_OF_4 and crop % 4:
        return {"crop_size": f"{values['network']} needs a crop size divisible by 4; got {crop} "
                             f"(e.g. {crop - crop % 4 or 4})."}
    size = image_size(store, values.get("dataset"))
    if size and crop > min(size):
        height, width = size
        return {"crop_size": f"The crop ({crop}x{crop}) must fit in the dataset's {width}x{height} images: "
                             f"choose at most {min(size)}."}
    return {}


def image_size(store: JobStore, dataset_id: str | None) -> tuple[int, int] | None:
    """(height, width) of a dataset's images: from its stats once built, else from what it was asked
    for; None when neither says (a plugin dataset not built yet: the worker checks then)."""
    if not dataset_id:
        return None
    dataset = store.get(dataset_id)
    image = (read_json(dataset.dir / "stats.json") or {}).get("image") or dataset.params
    if image.get("height") and image.get("width"):
        return int(image["height"]), int(image["width"])
    return None
