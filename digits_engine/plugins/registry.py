"""Finds plugins through entry points and keeps every one that failed, with its error.

Each entry point is loaded inside try/except: a broken plugin is listed on the
System page with its package, version and error, and never breaks the app.
A plugin can be blocked by id or entry-point name with DIGITS_BLOCKED_PLUGINS
(comma-separated). Built-in views register through the same entry points
(in our own pyproject.toml), so they are found the same way.
"""
import os
import traceback
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata

from ..errors import PluginError
from .interfaces import DataPlugin, ViewPlugin

GROUPS = {"data": ("digits.plugins.data", DataPlugin), "view": ("digits.plugins.view", ViewPlugin)}


@dataclass(frozen=True)
class PluginInfo:
    kind: str  # "data" or "view"
    name: str  # the entry point's name
    value: str  # module:attribute
    package: str
    version: str
    plugin: type | None = None
    error: str | None = None
    details: str = field(default="", repr=False)

    @property
    def id(self) -> str:
        return self.plugin.get_id() if self.plugin else self.name

    @property
    def title(self) -> str:
        return self.plugin.get_title() if self.plugin else self.name


def _blocked() -> set[str]:
    return {n.strip() for n in os.environ.get("DIGITS_BLOCKED_PLUGINS", "").split(",") if n.strip()}


def _load(kind: str, entry_point) -> PluginInfo:
    base = GROUPS[kind][1]
    dist = getattr(entry_point, "dist", None)
    package = dist.name if dist else "?"
    version = dist.version if dist else "?"
    info = dict(kind=kind, name=entry_point.name, value=entry_point.value, package=package, version=version)
    try:
        plugin = entry_point.load()
        if not (isinstance(plugin, type) and issubclass(plugin, base)):
            raise TypeError(f"{entry_point.value} is not a subclass of digits_engine.plugins.{base.__name__}")
        plugin.get_id(), plugin.get_title()
    except Exception as exc:  # noqa: BLE001 - any failure of third-party code is reported, not raised
        return PluginInfo(**info, error=f"{type(exc).__name__}: {exc}", details=traceback.format_exc())
    return PluginInfo(**info, plugin=plugin)


@lru_cache(maxsize=None)
def _discover(kind: str, blocked: frozenset) -> tuple[PluginInfo, ...]:
    group = GROUPS[kind][0]
    found = []
    for entry_point in sorted(metadata.entry_points(group=group), key=lambda e: e.name):
        if entry_point.name in blocked:
            continue
        info = _load(kind, entry_point)
        if info.plugin is None or info.id not in blocked:
            found.append(info)
    return tuple(found)


def discover(kind: str) -> list[PluginInfo]:
    """Every plugin of `kind` ("data" or "view") installed, loaded or with its error. Cached per process."""
    if kind not in GROUPS:
        raise ValueError(f"Plugin kind must be one of {', '.join(GROUPS)}, got {kind!r}.")
    return list(_discover(kind, frozenset(_blocked())))


def working(kind: str) -> dict[str, type]:
    """{plugin id: class} for the plugins of `kind` that loaded."""
    return {info.id: info.plugin for info in discover(kind) if info.plugin is not None}


def get(kind: str, plugin_id: str) -> type:
    """The plugin class with this id; the error says which ids exist, or why this one failed."""
    for info in discover(kind):
        if info.id == plugin_id or info.name == plugin_id:
            if info.plugin is None:
                raise PluginError(f"The {kind} plugin {plugin_id!r} ({info.package} {info.version}) failed to load: "
                                  f"{info.error}")
            return info.plugin
    names = ", ".join(working(kind)) or "none installed"
    raise PluginError(f"No {kind} plugin {plugin_id!r}; installed: {names}. Install it with pip and restart.")


def refresh() -> None:
    """Forget what was found (after installing a plugin into a running process)."""
    _discover.cache_clear()
