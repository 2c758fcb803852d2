"""Exceptions whose message is meant for a person: what was wrong and what to do."""


class DigitsError(Exception):
    """Base class: the message is shown as is, never a traceback."""


class JobNotFound(DigitsError, LookupError):
    def __init__(self, job_id: str):
        super().__init__(f"No job with id {job_id!r}: it may have been deleted. "
                         "The home page (or `digits jobs list`) shows the jobs that exist.")
        self.job_id = job_id


class InvalidParams(DigitsError, ValueError):
    """A form or CLI value is wrong. `field` names the input to mark."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class DeleteRefused(DigitsError):
    pass


class DatasetError(DigitsError, ValueError):
    """The source data cannot become a dataset."""


class PluginError(DigitsError, LookupError):
    """A plugin is missing, blocked, or failed to load."""
