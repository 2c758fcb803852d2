"""Images in an S3 bucket, laid out as DIGITS' S3 datasets: <path>/<class>/<image>.

Owns the client (explicit endpoint, path-style, short timeouts so that a dead
endpoint fails in seconds), paginated listing with no cap per class, object
reads, and turning botocore's errors into messages for people. Credentials
are passed in; they are never logged or put in an error message.
"""
from dataclasses import dataclass

import boto3
import botocore.exceptions
from botocore.config import Config

from .errors import DatasetError
from .folder_parse import is_visible_dir

CLIENT_CONFIG = Config(s3={"addressing_style": "path"}, connect_timeout=5, read_timeout=60,
                       retries={"max_attempts": 2, "mode": "standard"}, signature_version="s3v4")


@dataclass(frozen=True)
class S3Location:
    endpoint: str
    bucket: str
    path: str  # the prefix holding one "folder" per class, e.g. mnist/train/

    @property
    def prefix(self) -> str:
        path = self.path.strip().lstrip("/")
        return path if not path or path.endswith("/") else path + "/"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix} at {self.endpoint}"


def make_client(endpoint: str, access_key: str, secret_key: str):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access_key,
                        aws_secret_access_key=secret_key, region_name="us-east-1", config=CLIENT_CONFIG)


def explain(error: Exception, endpoint: str, bucket: str) -> str:
    """A message that says what went wrong with this endpoint and bucket, and what to do."""
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("InvalidAccessKeyId", "InvalidClientTokenId"):
            return f"The S3 server at {endpoint} does not know this access key: check the access key."
        if code == "SignatureDoesNotMatch":
            return f"The S3 server at {endpoint} rejected the secret key for this access key: check the secret key."
        if code in ("NoSuchBucket", "404", "NotFound"):
            return f"There is no bucket {bucket!r} on {endpoint}: check the bucket name."
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return f"These keys may not read bucket {bucket!r} on {endpoint} (access denied)."
        return f"The S3 server at {endpoint} answered {code or 'an error'}: {error}"
    if isinstance(error, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)):
        return f"Cannot reach the S3 endpoint {endpoint}: check the URL and port, and that the server is running."
    if isinstance(error, ValueError) and "endpoint" in str(error).lower():
        return f"{endpoint!r} is not a valid endpoint URL; it looks like http://host:port."
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return f"S3 request to {endpoint} failed: {error}"
    return f"{type(error).__name__}: {error}"


S3_ERRORS = (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, ValueError)


def list_classes(client, location: S3Location) -> dict[str, list[str]]:
    """{class folder name: [keys of the objects under it, at any depth]}, every page read. Hidden keys and
    folders and `__MACOSX/` are left out, as in a server folder."""
    paginator = client.get_paginator("list_objects_v2")
    classes: dict[str, list[str]] = {}
    try:
        for page in paginator.paginate(Bucket=location.bucket, Prefix=location.prefix):
            for item in page.get("Contents", []):
                rest = item["Key"][len(location.prefix):]
                *folders, name = rest.split("/")
                if folders and name and all(is_visible_dir(f) for f in folders) and not name.startswith("."):
                    classes.setdefault(folders[0], []).append(item["Key"])
    except S3_ERRORS as exc:
        raise DatasetError(explain(exc, location.endpoint, location.bucket)) from None
    if not classes:
        raise DatasetError(f"Found no class folders under {location}: the images must be at "
                           f"{location.prefix or ''}<class>/<image>. Check the path (e.g. mnist/train/).")
    return classes


def read_object(client, bucket: str, key: str) -> bytes:
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()
