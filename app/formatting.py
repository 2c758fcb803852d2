"""How times, durations and states read on a page."""
from datetime import datetime, timezone

STATE_COLORS = {"Initialized": "orange", "Waiting": "orange", "Running": "blue", "Done": "green",
                "Aborted": "gray", "Error": "red"}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def when(iso: str | None) -> str:
    """'14:30' today, '27 Nov 14:30' otherwise, in local time."""
    if not iso:
        return ""
    moment = datetime.fromisoformat(iso).astimezone()
    if moment.date() == datetime.now(timezone.utc).astimezone().date():
        return moment.strftime("%H:%M")
    return moment.strftime("%d %b %H:%M")


def percent(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"
