"""The states a job moves through, as in DIGITS (I/W/R/D/A/E)."""
from enum import Enum


class JobState(str, Enum):
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    RUNNING = "Running"
    DONE = "Done"
    ABORTED = "Aborted"
    ERROR = "Error"

    @property
    def is_active(self) -> bool:
        """Not ended yet: it may still run and change."""
        return self in (JobState.INITIALIZED, JobState.WAITING, JobState.RUNNING)

    def __str__(self) -> str:
        return self.value
