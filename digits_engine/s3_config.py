"""The [S3 Config] file of DIGITS' container guide (upload_config.cfg):
endpoint, accesskey, secretkey, bucket, prefix. Read by the upload tool and by
`digits dataset create --s3-config`.

Values are read raw (a '%' in a secret key is kept as is). Error messages name
lines and keys, never values, so a malformed line cannot leak a key.
"""
import configparser
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import DigitsError

SECTION = "S3 Config"
FIELDS = ("endpoint", "accesskey", "secretkey", "bucket", "prefix")
PLACEHOLDER_HOST = "your-s3-endpoint.com"  # the guide's example endpoint


class S3ConfigError(DigitsError):
    """The config file is missing, malformed or incomplete; the message says which line or key."""


@dataclass(frozen=True)
class S3Config:
    """The [S3 Config] section. The keys are left out of repr() so that they never reach a log."""
    endpoint: str
    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    bucket: str
    prefix: str = ""

    @property
    def key_prefix(self) -> str:
        """'mnist' -> 'mnist/', '' -> '' (the prefix's own slashes are trimmed)."""
        prefix = self.prefix.strip().strip("/")
        return prefix + "/" if prefix else ""


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1].strip()
    return value


def read_config(path) -> S3Config:
    """Read the [S3 Config] section of ``path``; raise S3ConfigError naming what is missing or wrong.

    Values are read raw (a '%' in a secret key is kept as is). Error messages name
    lines and keys, never values, so a malformed line cannot leak a key.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "not found"
        raise S3ConfigError(f"Config file {path} {what}. Give the file's path with --config (upload_s3_data) "
                            f"or --s3-config (digits dataset create); it needs a [{SECTION}] section with "
                            f"{', '.join(FIELDS)}.")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except configparser.MissingSectionHeaderError as exc:
        raise S3ConfigError(f"{path}, line {exc.lineno}: settings must come after a [{SECTION}] "
                          f"section header.") from None
    except configparser.DuplicateSectionError as exc:
        raise S3ConfigError(f"{path}, line {exc.lineno}: section [{exc.section}] appears twice.") from None
    except configparser.DuplicateOptionError as exc:
        raise S3ConfigError(f"{path}, line {exc.lineno}: {exc.option!r} appears twice in "
                          f"[{exc.section}].") from None
    except configparser.ParsingError as exc:
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
        raise S3ConfigError(f"{path}: cannot read line(s) {lines}; each setting is 'name = value'.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise S3ConfigError(f"Cannot read config file {path}: {getattr(exc, 'strerror', None) or exc}") from None

    section = next((s for s in parser.sections() if s.strip().lower() == SECTION.lower()), None)
    if section is None:
        found = ", ".join(f"[{s}]" for s in parser.sections()) or "none"
        raise S3ConfigError(f"{path} has no [{SECTION}] section (sections found: {found}). "
                          f"It needs [{SECTION}] with {', '.join(FIELDS)}.")
    values = {name: _unquote(parser.get(section, name, fallback="")) for name in FIELDS}
    missing = [name for name in FIELDS if not parser.has_option(section, name)]
    if missing:
        raise S3ConfigError(f"[{SECTION}] in {path} lacks {', '.join(missing)} "
                          f"(it needs {', '.join(FIELDS)}).")
    empty = [name for name in FIELDS if name != "prefix" and not values[name]]
    if empty:
        raise S3ConfigError(f"[{SECTION}] in {path}: {', '.join(empty)} must not be empty.")

    endpoint = values["endpoint"]
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise S3ConfigError(f"[{SECTION}] in {path}: endpoint {endpoint!r} is not a URL like "
                          f"http://host:port or https://host.")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise S3ConfigError(f"[{SECTION}] in {path}: endpoint {endpoint!r} has an invalid port.") from None
    if parts.hostname.lower() == PLACEHOLDER_HOST:
        raise S3ConfigError(f"{path} still has the example endpoint {endpoint}: set endpoint, accesskey, "
                          f"secretkey, bucket and prefix to those of your S3 server.")
    return S3Config(endpoint=endpoint.rstrip("/"), access_key=values["accesskey"],
                        secret_key=values["secretkey"], bucket=values["bucket"], prefix=values["prefix"])
