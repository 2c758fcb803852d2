"""Where a dataset's samples come from: files on the server, objects in an S3
bucket, or a data plugin. Each lists its samples split into train/val/test,
and encodes one sample as (HxWxC uint8 pixels, label).

Encoders run inside ingest pool processes: an S3 reader makes one client per
process (and may keep a copy of each object under a local folder); a plugin
is instantiated once per process from the job's options.
"""
import io
from pathlib import Path

import numpy as np

from . import config, s3_source, source_facts, textfile_parse
from .errors import DatasetError
from .folder_parse import FolderSplit, add_stage_folder, is_image_name, not_an_image, parse_folder, split_classes
from .images import ImageError, load_image_info, resize_image
from .plugins import registry
from .plugins.interfaces import STAGES

_clients: dict = {}
FILE_SOURCES = ("folder", "upload", "textfile")  # images read from files on the server


def list_and_split(params: dict, secrets: dict) -> FolderSplit:
    """The dataset's samples, split into train/val/test (DIGITS' rules for folders, lists and S3)."""
    if params.get("source") == "plugin":
        return _plugin_split({**params, "options": {**params["options"], **secrets}})
    if params.get("source") == "textfile":
        return _textfile_split(params)
    split_args = (params["val_pct"], params["test_pct"], params["min_per_class"], params["max_per_class"],
                  params.get("seed"))
    if params.get("source", "folder") in ("folder", "upload"):
        return _folder_split(params, split_args)
    location = s3_location(params)
    client = s3_source.make_client(location.endpoint, params["s3_access_key"], secrets.get("s3_secret_key", ""))
    listed = s3_source.list_classes(client, location)
    images = {name: [k for k in keys if is_image_name(k.rsplit("/", 1)[-1])] for name, keys in listed.items()}
    split = split_classes(images, str(location), *split_args)
    split.ignored_files.extend((key, not_an_image(key.rsplit("/", 1)[-1]))
                               for keys in listed.values() for key in keys if not is_image_name(key.rsplit("/", 1)[-1]))
    return split


def _folder_split(params: dict, split_args: tuple) -> FolderSplit:
    """The training folder split as asked, or, for a split with its own folder (DIGITS' separate validation
    and test folders), that split's share of the training folder set to 0 and the whole folder read into it."""
    val_pct, test_pct, *limits = split_args
    own = {stage: params.get(f"{stage}_folder") for stage in ("val", "test")}
    split = parse_folder(params["folder"], 0 if own["val"] else val_pct, 0 if own["test"] else test_pct, *limits)
    for stage, folder in own.items():
        if folder:
            add_stage_folder(split, stage, folder, params.get(f"{stage}_min_per_class") or 2,
                             params.get(f"{stage}_max_per_class"), params.get("seed"))
    return split


def _textfile_split(params: dict) -> FolderSplit:
    return textfile_parse.parse_lists(
        params["labels_file"], params["train_list"], params.get("val_list"), params.get("test_list"),
        prefixes={stage: params.get(f"{stage}_folder_prefix") for stage in ("train", "val", "test")},
        roots=config.data_roots())


def describe(params: dict) -> str:
    """Where the images come from, for messages and the dataset page."""
    source = params.get("source", "folder")
    if source == "plugin":
        return f"data plugin {params['plugin']}"
    if source == "textfile":
        return f"image lists {', '.join(params[k] for k in ('train_list', 'val_list', 'test_list') if params.get(k))}"
    if source == "upload":
        return f"uploaded archive {params.get('archive')} (extracted to {params['folder']})"
    if source == "folder":
        others = [f"{stage} {params[f'{stage}_folder']}" for stage in ("val", "test") if params.get(f"{stage}_folder")]
        return params["folder"] + (f" ({', '.join(others)})" if others else "")
    return str(s3_location(params))


def s3_location(params: dict) -> s3_source.S3Location:
    return s3_source.S3Location(params["s3_endpoint"], params["s3_bucket"], params["s3_path"])


def reader(params: dict, secrets: dict, copy_dir: Path | None) -> dict:
    """What a pool process needs to open the images (picklable; stays in memory)."""
    if params.get("source") == "plugin":
        return {"kind": "plugin", "plugin": params["plugin"], "options": params["options"]}
    if params.get("source", "folder") in FILE_SOURCES:
        return {"kind": "folder"}
    return {"kind": "s3", "endpoint": params["s3_endpoint"], "bucket": params["s3_bucket"],
            "access_key": params["s3_access_key"], "secret_key": secrets.get("s3_secret_key", ""),
            "copy_dir": str(copy_dir) if copy_dir else None}


def open_image(item: str, how: dict, target_size=None):
    """(PIL image, what the file held: images.load_image_info) from a path or an S3 key.

    target_size (width, height): what the image will be resized to (a large JPEG decodes at a reduced scale)."""
    if how["kind"] == "folder":
        return load_image_info(item, target_size)
    client = _client(how)
    try:
        data = s3_source.read_object(client, how["bucket"], item)
    except s3_source.S3_ERRORS as exc:
        raise ImageError(f"{item!r}: {s3_source.explain(exc, how['endpoint'], how['bucket'])}") from None
    if how["copy_dir"]:
        _keep_copy(Path(how["copy_dir"]), item, data)
    buffer = io.BytesIO(data)
    buffer.name = item
    return load_image_info(buffer, target_size)


def _client(how: dict):
    key = (how["endpoint"], how["access_key"])
    if key not in _clients:
        _clients[key] = s3_source.make_client(how["endpoint"], how["access_key"], how["secret_key"])
    return _clients[key]


def _keep_copy(root: Path, key: str, data: bytes) -> None:
    target = (root / key).resolve()
    if root.resolve() not in target.parents:
        return  # a key like "../x" must not write outside the copy folder
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)


def item_name(item) -> str:
    """How a sample is named in lists of skipped files: its path, or a plugin entry's first part."""
    first = item[0] if isinstance(item, (tuple, list)) and item else item
    return str(first)


def encode_item(item, label, params: dict, how: dict, rng) -> tuple:
    """(HxWxC uint8 pixels at the dataset's size, label, source_facts about the source) for one listed sample."""
    if how["kind"] == "plugin":
        pixels, label = _plugin_encode(item, params, how)
        facts = source_facts.of_array(pixels)
        if isinstance(label, dict) and label.get("source_size"):  # a detection plugin's file, before resizing
            facts["width"], facts["height"] = label["source_size"]
        return pixels, label, facts
    image, info = open_image(item, how, (params["width"], params["height"]))
    pixels = resize_image(image, params["height"], params["width"], channels=params["channels"],
                          resize_mode=params["resize_mode"], rng=rng)
    return pixels, label, source_facts.of_image(image, info)


# ---------------------------------------------------------------- data plugins

_plugins: dict = {}


def data_plugin(plugin_id: str, options: dict, is_inference_db: bool = False):
    """An instance of the data plugin, made once per process for the same options."""
    key = (plugin_id, is_inference_db, repr(sorted(options.items())))
    if key not in _plugins:
        _plugins[key] = registry.get("data", plugin_id)(is_inference_db=is_inference_db, **options)
    return _plugins[key]


def _plugin_split(params: dict) -> FolderSplit:
    plugin = data_plugin(params["plugin"], params["options"])
    split = FolderSplit(labels=list(plugin.class_labels()))
    try:
        for stage in STAGES:
            setattr(split, stage, [(entry, -1) for entry in plugin.itemize_entries(stage)])
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    split.ignored_files.extend((str(path), reason) for path, reason in getattr(plugin, "problems", []))
    if not split.train:
        raise DatasetError(f"The {plugin.get_title()} plugin found no training samples with these settings.")
    return split


def checked_sample(image, label) -> tuple[np.ndarray, object]:
    """A plugin's (image, label), checked and shaped: HxWxC uint8 (C 1 or 3), an int, an HxWx1 mask,
    or a detection dict (see _checked_boxes)."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ValueError(f"the plugin returned an image of shape {image.shape}; expected HxW or HxWxC with C 1 or 3")
    if isinstance(label, dict):
        return image.astype(np.uint8), _checked_boxes(label, image.shape)
    if label is None or np.isscalar(label) or np.ndim(label) == 0:
        return image.astype(np.uint8), None if label is None else int(label)
    mask = np.asarray(label)
    mask = mask[:, :, None] if mask.ndim == 2 else mask
    if mask.shape != image.shape[:2] + (1,):
        raise ValueError(f"the plugin's label mask is {mask.shape} but its image is {image.shape}; "
                         "a mask is HxW or HxWx1, the image's size")
    return image.astype(np.uint8), mask.astype(np.uint8)


def _checked_boxes(label: dict, shape) -> dict:
    """A detection label: {"boxes": float32 Nx4 (l, t, r, b inside the image), "classes": int64 N},
    with the plugin's "dontcare" count, "problems" (messages about this sample) and "source_size"
    (width, height of its file, when it says) passed on."""
    boxes = np.asarray(label.get("boxes", []), np.float32).reshape(-1)
    classes = np.asarray(label.get("classes", []), np.int64).reshape(-1)
    if boxes.size != 4 * classes.size:
        raise ValueError(f"the plugin's detection label has {boxes.size} box values and {classes.size} "
                         "classes; expected N x 4 boxes and N classes")
    boxes = boxes.reshape(-1, 4)
    height, width = shape[:2]
    if ((boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])).any() or (boxes < 0).any() \
            or (boxes[:, [0, 2]] > width).any() or (boxes[:, [1, 3]] > height).any() or (classes < 0).any():
        raise ValueError(f"the plugin's boxes must lie inside the {width}x{height} image with left < right, "
                         "top < bottom, and class ids >= 0")
    checked = {"boxes": boxes, "classes": classes, "dontcare": int(label.get("dontcare", 0)),
               "problems": [str(p) for p in label.get("problems", [])]}
    if label.get("source_size") is not None:
        checked["source_size"] = tuple(int(v) for v in label["source_size"])
    return checked


def _plugin_encode(entry, params: dict, how: dict) -> tuple:
    image, label = checked_sample(*data_plugin(how["plugin"], how["options"]).encode_entry(entry))
    expected = (params["height"], params["width"], params["channels"])
    if image.shape != expected:
        raise ValueError(f"{entry}: the image is {image.shape[1]}x{image.shape[0]}x{image.shape[2]} but the "
                         f"dataset's are {expected[1]}x{expected[0]}x{expected[2]} (set the plugin to resize)")
    return image, label


def plugin_image_spec(params: dict, split: FolderSplit) -> dict:
    """The size and channels of a plugin dataset, from its first sample that encodes."""
    plugin = data_plugin(params["plugin"], params["options"])
    problems = []
    for entry, _ in split.train[:20]:
        try:
            image, _ = checked_sample(*plugin.encode_entry(entry))
        except ValueError as exc:
            problems.append(str(exc))
            continue
        height, width, channels = image.shape
        return {**params, "height": height, "width": width, "channels": channels, "encoding": "png",
                "resize_mode": getattr(plugin, "resize_mode", "squash")}  # how files are prepared for its models
    raise DatasetError(f"None of the first {len(problems)} training samples could be encoded: {problems[0]}")
