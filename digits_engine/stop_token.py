"""A cooperative stop request: set by SIGTERM or by an `abort` file in the job folder.

Long loops ask `stop.requested` between units of work (a batch, a chunk of
images) and wind down cleanly.
"""
from pathlib import Path


class StopToken:
    def __init__(self, marker: Path | None = None):
        self.marker = Path(marker) if marker else None
        self._requested = False

    def request(self) -> None:
        self._requested = True

    @property
    def requested(self) -> bool:
        if not self._requested and self.marker is not None and self.marker.exists():
            self._requested = True
        return self._requested
