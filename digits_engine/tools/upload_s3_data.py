"""Upload a DIGITS image folder to S3, as in the DIGITS container guide.

    python -m digits_engine.download_data mnist ~/mnist
    # edit digits_engine/tools/upload_config.cfg ([S3 Config] endpoint, accesskey,
    # secretkey, bucket, prefix), then one of:
    python digits_engine/tools/upload_s3_data.py ~/mnist
    python -m digits_engine.tools.upload_s3_data ~/mnist --config my.cfg

Image files under DIR/train/<class>/ (and DIR/test/<class>/ when present) land
as ``<prefix>/train/<class>/<file>`` in the bucket, which is created when
missing. Uploads run in parallel with a progress bar. Objects already in the
bucket with the same key and size are skipped, so running the command again
after an interruption uploads only what is missing (or changed size).

Problems (config, folder, endpoint, keys) end the command with a message that
says what to fix and a non-zero exit code, never a traceback. Credentials are
never printed. The S3 client and the error messages are those of
``digits_engine.s3_source``, shared with the dataset ingest.
"""
import argparse
import mimetypes
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from threading import Event

from digits_engine.errors import DigitsError
from digits_engine.folder_parse import is_image_name
from digits_engine.s3_config import SECTION, S3Config, read_config
from digits_engine.s3_source import S3_ERRORS, explain, make_client

DEFAULT_CONFIG = Path(__file__).resolve().with_name("upload_config.cfg")
PHASES = ("train", "test")
DEFAULT_WORKERS = 8
MAX_WORKERS = 10  # botocore's connection pool holds 10 connections per client
LAYOUT = "DIR/train/<class>/<image> (and optionally DIR/test/<class>/<image>)"


class UploadError(DigitsError):
    """The upload cannot go on; the message says why and what to do."""


@dataclass
class UploadResult:
    uploaded: int = 0
    skipped: int = 0
    total: int = 0
    bucket_created: bool = False
    phases: tuple = ()
    ignored: int = 0  # files in DIR/train and DIR/test that are not images inside a class folder



# ---------------------------------------------------------------- local files

def collect_files(folder) -> tuple[list[tuple[Path, str]], int]:
    """([(local path, key relative to the prefix)], number of files left out).

    Relative keys look like 'train/<class>/<file>' ('/' separators, at any depth
    inside the class folder). Only image files inside a class folder of
    DIR/train or DIR/test count; hidden files and folders are skipped.
    """
    folder = Path(folder).expanduser()
    if not folder.exists():
        raise UploadError(f"Folder {folder} not found. Expected {LAYOUT}, as "
                          f"`python -m digits_engine.download_data mnist DIR` writes.")
    if not folder.is_dir():
        raise UploadError(f"{folder} is not a folder. Expected {LAYOUT}.")
    if not (folder / "train").is_dir():
        raise UploadError(f"{folder} has no train/ folder. Expected {LAYOUT}, as "
                          f"`python -m digits_engine.download_data mnist DIR` writes.")
    files, ignored = [], 0
    for phase in PHASES:
        root = folder / phase
        if not root.is_dir():
            continue
        seen = set()
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            real = os.path.realpath(dirpath)
            if real in seen:  # a symlink loop
                dirnames[:] = []
                continue
            seen.add(real)
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            here = Path(dirpath)
            for name in sorted(filenames):
                if here == root or not is_image_name(name):
                    ignored += not name.startswith(".")
                    continue
                path = here / name
                files.append((path, "/".join(path.relative_to(folder).parts)))
    if not any(rel.startswith("train/") for _, rel in files):
        raise UploadError(f"{folder / 'train'} holds no images in class folders. Expected {LAYOUT}; "
                          f"image files end in .png, .jpg, .jpeg, .bmp, .ppm or .pgm.")
    return files, ignored


# ---------------------------------------------------------------- S3

def _scrub(message: str, config: S3Config) -> str:
    """Belt and braces: no key ever appears in a message, whatever a server or library put there."""
    for secret in (config.secret_key, config.access_key):
        if secret and len(secret) >= 4:
            message = message.replace(secret, "***")
    return message


def describe(error: Exception, config: S3Config) -> str:
    """A person's message for an S3 error met while uploading (s3_source.explain for the common cases)."""
    endpoint, bucket = config.endpoint, config.bucket
    code = ""
    if hasattr(error, "response"):
        code = str(error.response.get("Error", {}).get("Code", ""))
    if code.isdigit():
        # An S3 server names its errors (NoSuchBucket, AccessDenied...); a bare HTTP status
        # means something else answered, e.g. another service on the wrong port.
        message = (f"{endpoint} answered HTTP {code} without an S3 error code: it does not look like "
                   f"an S3 endpoint. Check the host and port in the config's endpoint.")
    elif code in ("AccessDenied", "AllAccessDisabled"):
        message = (f"The S3 server at {endpoint} denied access to bucket {bucket!r} (AccessDenied): "
                   f"these keys may not list, create or write it.")
    elif code == "InvalidBucketName":
        message = (f"{bucket!r} is not a valid bucket name on {endpoint}: use 3 to 63 lowercase "
                   f"letters, digits, '-' or '.'.")
    elif code == "BucketAlreadyExists":
        message = (f"The bucket {bucket!r} already exists on {endpoint} and belongs to someone else: "
                   f"choose another bucket name.")
    elif code == "RequestTimeTooSkewed":
        message = f"The S3 server at {endpoint} rejected the request: this machine's clock is off."
    else:
        message = explain(error, endpoint, bucket)
        if code == "InvalidAccessKeyId":
            message += " (InvalidAccessKeyId: accesskey in the config)"
        elif code == "SignatureDoesNotMatch":
            message += " (SignatureDoesNotMatch: secretkey in the config)"
    return _scrub(message, config)


def _is_no_such_bucket(error) -> bool:
    return hasattr(error, "response") and error.response.get("Error", {}).get("Code") == "NoSuchBucket"


def existing_sizes(client, bucket: str, prefix: str) -> dict[str, int] | None:
    """{key: size} for every object under ``prefix`` (all pages); None when the bucket does not exist."""
    sizes = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                sizes[item["Key"]] = item["Size"]
    except S3_ERRORS as exc:
        if _is_no_such_bucket(exc):
            return None
        raise
    return sizes


def create_bucket(client, bucket: str) -> None:
    """Create ``bucket`` (us-east-1 style, no location constraint); one we already own is fine."""
    try:
        client.create_bucket(Bucket=bucket)
    except S3_ERRORS as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


def _put(client, bucket: str, key: str, path: Path, stop: Event) -> bool:
    if stop.is_set():
        return False
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    try:
        with open(path, "rb") as body:
            client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    except OSError as exc:
        raise UploadError(f"Cannot read {path}: {exc.strerror or exc}") from None
    return True


def upload_folder(folder, config: S3Config, *, workers: int = DEFAULT_WORKERS, progress: bool = True,
                  client=None, out=None) -> UploadResult:
    """Upload DIR/train and DIR/test to ``config``'s bucket; return what was uploaded and skipped.

    Raises UploadError (a message for a person) on any problem; the first failed
    upload stops the rest, and a later run resumes where this one stopped.
    """
    out = out or sys.stdout
    files, ignored = collect_files(folder)
    phases = tuple(p for p in PHASES if any(rel.startswith(p + "/") for _, rel in files))
    result = UploadResult(total=len(files), phases=phases, ignored=ignored)
    base = config.key_prefix
    where = f"s3://{config.bucket}/{base} at {config.endpoint}"
    try:
        client = client or make_client(config.endpoint, config.access_key, config.secret_key)
        existing = {}
        for phase in phases:
            sizes = existing_sizes(client, config.bucket, f"{base}{phase}/")
            if sizes is None:
                create_bucket(client, config.bucket)
                result.bucket_created = True
                sizes = {}
            existing.update(sizes)
    except S3_ERRORS as exc:
        raise UploadError(describe(exc, config)) from None

    todo = []
    for path, rel in files:
        key = base + rel
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise UploadError(f"Cannot read {path}: {exc.strerror or exc}") from None
        if existing.get(key) == size:
            result.skipped += 1
        else:
            todo.append((path, key))
    if result.bucket_created:
        print(f"Created bucket {config.bucket!r} on {config.endpoint}.", file=out)
    print(f"{len(files)} images in {', '.join(p + '/' for p in phases)} of {folder}: "
          f"{len(todo)} to upload to {where}, {result.skipped} already there.", file=out, flush=True)
    if todo:
        result.uploaded = _upload_all(client, config, todo, workers, progress)
    return result


def _upload_all(client, config: S3Config, todo, workers: int, progress: bool) -> int:
    from tqdm import tqdm

    stop = Event()
    failure = None
    futures = []
    try:  # a terminal that reports no width (some ptys) would get an empty bar
        width = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError, AttributeError):
        width = 0
    bar = tqdm(total=len(todo), unit="file", desc="Uploading", disable=None if progress else True,
               file=sys.stderr, dynamic_ncols=width > 0, ncols=None if width > 0 else 80)
    try:
        with ThreadPoolExecutor(max_workers=max(1, min(workers, MAX_WORKERS))) as pool:
            try:
                for path, key in todo:
                    futures.append(pool.submit(_put, client, config.bucket, key, path, stop))
                for future in as_completed(futures):
                    if future.exception() is not None:
                        failure = future.exception()
                        break
                    bar.update(1)
            finally:  # an error or Ctrl+C: what has not started never will; what runs finishes
                if failure is not None or not all(f.done() for f in futures):
                    stop.set()
                    for f in futures:
                        f.cancel()
    except KeyboardInterrupt:
        done = _count_uploaded(futures)
        raise UploadInterrupted(done, len(todo)) from None
    finally:
        bar.close()
    done = _count_uploaded(futures)
    if failure is not None:
        if isinstance(failure, UploadError):
            reason = str(failure)
        elif isinstance(failure, S3_ERRORS):
            reason = describe(failure, config)
        else:
            reason = _scrub(f"{type(failure).__name__}: {failure}", config)
        raise UploadError(f"{reason}\nUploaded {done} of {len(todo)} files before the error; "
                          f"once it is fixed, run the same command again to upload the rest.")
    return done


def _count_uploaded(futures) -> int:
    return sum(1 for f in futures
               if f.done() and not f.cancelled() and f.exception() is None and f.result())


class UploadInterrupted(UploadError):
    def __init__(self, uploaded: int, total: int):
        super().__init__(f"Interrupted: uploaded {uploaded} of {total} files. "
                         f"Run the same command again to upload the rest.")
        self.uploaded = uploaded
        self.total = total


# ---------------------------------------------------------------- command line

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="upload_s3_data.py",
        description="Upload a DIGITS image folder (DIR/train/<class>/<image>, DIR/test/...) to S3 "
                    "as <prefix>/train/<class>/<image>. Files already there with the same size are "
                    "skipped, so an interrupted upload resumes when run again.")
    parser.add_argument("folder", help="dataset folder holding train/ (and optionally test/), "
                                       "e.g. ~/mnist from `python -m digits_engine.download_data mnist ~/mnist`")
    parser.add_argument("--config", default=str(DEFAULT_CONFIG), metavar="PATH",
                        help=f"config file with a [{SECTION}] section (default: {DEFAULT_CONFIG})")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, choices=range(1, MAX_WORKERS + 1),
                        metavar=f"1-{MAX_WORKERS}", help=f"parallel uploads (default {DEFAULT_WORKERS})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = read_config(args.config)
        result = upload_folder(args.folder, config, workers=args.workers, progress=not args.no_progress)
    except UploadInterrupted as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    except DigitsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    base = config.key_prefix
    print(f"Done: uploaded {result.uploaded}, skipped {result.skipped} (already there with the same size) "
          f"to s3://{config.bucket}/{base}.")
    if result.ignored:
        print(f"Left out {result.ignored} files that are not images inside a class folder.")
    print(f"For a DIGITS S3 dataset: endpoint {config.endpoint}, bucket {config.bucket}, "
          f"training images path {base}train/"
          + (f", separate test images path {base}test/" if "test" in result.phases else "") + ".")
    return 0


if __name__ == "__main__":
    sys.exit(main())
