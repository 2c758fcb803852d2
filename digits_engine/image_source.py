"""Where a dataset's images are read from: files on the server, or objects in
an S3 bucket. Both list as {class: [paths or keys]} and open as images.

Readers run inside ingest pool processes: an S3 reader makes one client per
process, and may keep a copy of each object it reads under a local folder.
"""
import io
from pathlib import Path

from . import s3_source
from .folder_parse import FolderSplit, is_image_name, not_an_image, parse_folder, split_classes
from .images import ImageError, load_image

_clients: dict = {}


def list_and_split(params: dict, secrets: dict) -> FolderSplit:
    """The dataset's images, split into train/val/test with DIGITS' rules."""
    split_args = (params["val_pct"], params["test_pct"], params["min_per_class"], params["max_per_class"],
                  params.get("seed"))
    if params.get("source", "folder") == "folder":
        return parse_folder(params["folder"], *split_args)
    location = s3_location(params)
    client = s3_source.make_client(location.endpoint, params["s3_access_key"], secrets.get("s3_secret_key", ""))
    listed = s3_source.list_classes(client, location)
    images = {name: [k for k in keys if is_image_name(k.rsplit("/", 1)[-1])] for name, keys in listed.items()}
    split = split_classes(images, str(location), *split_args)
    split.ignored_files.extend((key, not_an_image(key.rsplit("/", 1)[-1]))
                               for keys in listed.values() for key in keys if not is_image_name(key.rsplit("/", 1)[-1]))
    return split


def describe(params: dict) -> str:
    """Where the images come from, for messages and the dataset page."""
    return params["folder"] if params.get("source", "folder") == "folder" else str(s3_location(params))


def s3_location(params: dict) -> s3_source.S3Location:
    return s3_source.S3Location(params["s3_endpoint"], params["s3_bucket"], params["s3_path"])


def reader(params: dict, secrets: dict, copy_dir: Path | None) -> dict:
    """What a pool process needs to open the images (picklable; stays in memory)."""
    if params.get("source", "folder") == "folder":
        return {"kind": "folder"}
    return {"kind": "s3", "endpoint": params["s3_endpoint"], "bucket": params["s3_bucket"],
            "access_key": params["s3_access_key"], "secret_key": secrets.get("s3_secret_key", ""),
            "copy_dir": str(copy_dir) if copy_dir else None}


def open_image(item: str, how: dict):
    """A PIL image from a path or an S3 key."""
    if how["kind"] == "folder":
        return load_image(item)
    client = _client(how)
    try:
        data = s3_source.read_object(client, how["bucket"], item)
    except s3_source.S3_ERRORS as exc:
        raise ImageError(f"{item!r}: {s3_source.explain(exc, how['endpoint'], how['bucket'])}") from None
    if how["copy_dir"]:
        _keep_copy(Path(how["copy_dir"]), item, data)
    buffer = io.BytesIO(data)
    buffer.name = item
    return load_image(buffer)


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
