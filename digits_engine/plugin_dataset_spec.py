"""A dataset made by a data plugin: its form is the plugin's `dataset_fields()`
plus a name and group; submitting writes a dataset job whose worker runs the
plugin (itemize_entries, then encode_entry on every core). A path field of
the plugin's form must name a folder or file inside DIGITS_DATA_ROOTS."""
from pathlib import Path

from . import credentials, dataset_spec, server_paths
from .fields import Field, FormErrors, convert
from .job_store import Job, JobStore
from .plugins import registry
from .scheduler import Scheduler

JOB_FIELDS = [f for f in dataset_spec.COMMON_FIELDS if f.name in ("name", "group")]


def fields(plugin_id: str) -> list[Field]:
    """The whole form: name and group, then the plugin's own fields."""
    return JOB_FIELDS + list(registry.get("data", plugin_id).dataset_fields())


def create(plugin_id: str, raw: dict, store: JobStore | None = None) -> Job:
    plugin = registry.get("data", plugin_id)
    values, errors = convert(fields(plugin_id), raw)
    errors.update(path_problems(plugin.dataset_fields(), values))
    if errors:
        raise FormErrors(errors)
    options = {f.name: values[f.name] for f in plugin.dataset_fields() if f.kind != "secret"}
    secrets = {f.name: values[f.name] for f in plugin.dataset_fields() if f.kind == "secret"}
    store = store or JobStore()
    params = {"source": "plugin", "plugin": plugin.get_id(), "options": options, "seed": options.get("seed")}
    job = store.create("dataset", values["name"], params, group=values["group"] or "", task=plugin.task)
    if secrets:
        credentials.store(job, secrets)  # the worker hands them to the plugin; never in job.json
    return Scheduler(store).submit(job)


def path_problems(plugin_fields, values: dict) -> dict:
    """{field: message} for each filled-in path field outside the data roots (the plugin says what else is wrong
    with a path, in its own words, when the job runs)."""
    return {f.name: problem for f in plugin_fields if f.kind == "path" and str(values.get(f.name) or "").strip()
            and (problem := server_paths.outside_roots(Path(str(values[f.name]).strip()).expanduser(),
                                                       str(values[f.name])))}


def parse_options(pairs: list[str]) -> dict:
    """CLI `--option name=value` pairs -> {name: value}."""
    options = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise FormErrors({"option": f"--option takes name=value, got {pair!r}."})
        options[name.strip()] = value
    return options
