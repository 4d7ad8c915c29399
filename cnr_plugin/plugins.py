"""The plugin manager: built-in plugins and ``cnr_plugin`` entry points, registered alike.

Set ``CNR_LOAD_PLUGINS`` to a comma-separated list of entry-point names to load only those
outside plugins (an empty value loads none), so that an evaluation can be reproduced; the
built-ins always load. :func:`plugin_versions` says which plugins took part.
"""

from __future__ import annotations

import importlib
import os
import threading
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import hookspecs
from .errors import CnRError, closest, did_you_mean

ENTRY_POINT_GROUP = "cnr_plugin"
DEFAULT_PLUGINS = ("cnr_plugin.default_plugins.formats", "cnr_plugin.default_plugins.judges")

_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
#: plugin name -> (distribution, version) of the package that provided it
_sources: dict[str, tuple[str, str]] = {}


class PluginError(CnRError, ValueError):
    """A plugin, format or judge that cannot be found or loaded."""


def _new_manager() -> pluggy.PluginManager:
    from . import __version__

    pm = pluggy.PluginManager("cnr")
    pm.add_hookspecs(hookspecs)
    _sources.clear()
    for name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
        _sources[name] = ("cnr-plugin", __version__)
    wanted = os.environ.get("CNR_LOAD_PLUGINS")
    wanted_names = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    found = set()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if wanted_names is not None and ep.name not in wanted_names:
            continue
        found.add(ep.name)
        if pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(f"cnr plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from exc
        pm.register(plugin, name=ep.name)
        dist = getattr(ep, "dist", None)
        _sources[ep.name] = (dist.name, dist.version) if dist is not None else (ep.value, "unknown")
    if wanted_names:
        missing = wanted_names - found
        if missing:
            raise PluginError(_not_installed(sorted(missing)))
    return pm


def _not_installed(missing: list[str]) -> str:
    """CNR_LOAD_PLUGINS takes entry-point names: say which are installed, and map a distribution
    name (``cnr-shorter``) or a near miss to the entry-point name it should be."""
    installed = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    by_dist: dict[str, str] = {}
    for name, ep in installed.items():
        dist = getattr(ep, "dist", None)
        if dist is not None:
            by_dist.setdefault(dist.name.lower().replace("_", "-"), name)
    hints = []
    for name in missing:
        dist = name.lower().replace("_", "-")
        if dist in by_dist:
            hints.append(f"{name} (a distribution; its entry-point name is '{by_dist[dist]}')")
        else:
            hints.append(f"{name}{did_you_mean(name, installed)}")
    known = ", ".join(sorted(installed)) or "none"
    return (f"CNR_LOAD_PLUGINS names plugins that are not installed: {'; '.join(hints)} "
            f"(it takes entry-point names of the '{ENTRY_POINT_GROUP}' group; installed: {known})")


def get_plugin_manager() -> pluggy.PluginManager:
    global _pm
    with _lock:
        if _pm is None:
            _pm = _new_manager()
        return _pm


def reset() -> None:
    """Forget the loaded plugins (tests, or after installing a plugin in a running process)."""
    global _pm
    with _lock:
        _pm = None


def register(plugin: Any, name: str | None = None) -> None:
    """Register a plugin object or module at run time, as an entry point would."""
    get_plugin_manager().register(plugin, name=name)


def _collect(hook_name: str, make_key: Any) -> dict[str, Any]:
    """What the plugins register through ``hook_name``, called through pluggy's hook caller (so
    tracing and ordering work); a name registered twice is an error naming both modules."""
    found: dict[str, Any] = {}
    owners: dict[str, str] = {}

    def register(*args: Any) -> None:
        key, value, owner = make_key(*args)
        if key in found:
            raise PluginError(f"{hook_name}: {key!r} is registered twice, by {owners[key]} and by {owner}")
        found[key], owners[key] = value, owner

    getattr(get_plugin_manager().hook, hook_name)(register=register)
    return found


def _format_entry(fmt: Any) -> tuple[str, Any, str]:
    from .formats import CnRFormat

    if isinstance(fmt, type):
        fmt = fmt()
    if not isinstance(fmt, CnRFormat) or not fmt.name:
        raise PluginError(f"register_formats: {fmt!r} is not a named cnr_plugin.formats.CnRFormat")
    return fmt.name, fmt, type(fmt).__module__


def _judge_entry(cls: Any) -> tuple[str, Any, str]:
    # the Options model is checked by what cnr_plugin.judges.JudgeOptions provides (validation, the cache key's
    # fingerprint), not by importing it: the judges package reads this registry, never the other way round
    name, options = getattr(cls, "name", None), getattr(cls, "Options", None)
    if (not isinstance(cls, type) or not name or not callable(getattr(cls, "judge_one", None))
            or not (isinstance(options, type) and callable(getattr(options, "model_validate", None))
                    and callable(getattr(options, "fingerprint", None)))):
        raise PluginError(f"register_judges: {cls!r} is not a judge class with a name, an Options model "
                          "(a cnr_plugin.judges.JudgeOptions subclass) and judge_one()")
    return str(name), cls, str(cls.__module__)


def get_formats() -> dict[str, Any]:
    """All registered formats by name."""
    return _collect("register_formats", _format_entry)


def get_judges() -> dict[str, Any]:
    """All registered judge classes by name."""
    return _collect("register_judges", _judge_entry)


def _lookup(kind: str, name: str, table: dict[str, Any]) -> Any:
    if name in table:
        return table[name]
    wanted = os.environ.get("CNR_LOAD_PLUGINS")
    note = (f"; CNR_LOAD_PLUGINS={wanted!r} loads only those outside plugins (unset it to load every installed one)"
            if wanted is not None else "")
    raise PluginError(f"{closest(name, table, kind)} (known: {', '.join(sorted(table))}){note}")


def get_format(name: str) -> Any:
    return _lookup("CnR format", name, get_formats())


def get_judge(name: str) -> Any:
    """The judge class registered as ``name``."""
    return _lookup("judge", name, get_judges())


def plugin_versions() -> list[dict[str, str]]:
    """Name, distribution and version of each registered plugin (recorded with results)."""
    out = []
    for name, _plugin in get_plugin_manager().list_name_plugin():
        dist, ver = _sources.get(name, ("registered at run time", "unknown"))
        out.append({"name": name, "distribution": dist, "version": ver})
    return out
