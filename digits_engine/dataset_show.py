"""What `digits dataset show ID` prints: the job's summary, its stats (counts per
split and class, totals, skipped files with their reasons) and its health
summary; as JSON, or as tables a person reads."""
from . import dataset_health
from .atomic_json import read_json
from .errors import InvalidParams
from .job_store import Job
from .job_summary import summarize


def describe(job: Job, threshold: int = dataset_health.DEFAULT_THRESHOLD) -> dict:
    """The job summary plus its stats and health; `stats` and `health` are None until the dataset is built."""
    if job.kind != "dataset":
        raise InvalidParams(f"Job {job.id} is a {job.kind}, not a dataset: `digits jobs show {job.id}` shows it.")
    stats = read_json(job.artifact("stats.json"))
    out = summarize(job)
    if not stats:
        return {**out, "stats": None, "health": None}
    stats = {k: v for k, v in stats.items() if k != "health"}  # the health below is for this threshold
    stats.setdefault("total", sum(stats.get("totals", {}).values()))  # datasets built before "total" existed
    return {**out, "stats": stats, "health": dataset_health.summary(job.dir, stats, threshold)}


def as_text(info: dict) -> str:
    """The description as aligned tables."""
    lines = [f"{info['id']}  {info['name']}  {info['status']}"]
    stats, health = info["stats"], info["health"]
    if not stats:
        return "\n".join(lines + ["  not built yet" + (f": {info['error']}" if info.get("error") else "")])
    splits = list(stats["counts"])
    width = max([len(label) for label in stats["labels"]] + [5])
    lines.append(f"{'class':<{width}}  " + "  ".join(f"{s:>7}" for s in splits))
    for label in stats["labels"]:
        lines.append(f"{label:<{width}}  " + "  ".join(f"{stats['counts'][s].get(label, 0):>7}" for s in splits))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{stats['totals'].get(s, 0):>7}" for s in splits)
                 + f"   ({stats['total']} images)")
    lines += _skipped_lines(stats) + _health_lines(health)
    return "\n".join(lines)


def _skipped_lines(stats: dict) -> list[str]:
    skipped = stats.get("skipped_files", [])
    lines = [f"skipped files: {len(skipped)}"] if skipped else []
    lines += [f"  {s['path']}: {s['reason']}" for s in skipped]
    lines += [f"class left out: {c['class']}: {c['reason']}" for c in stats.get("skipped_classes", [])]
    return lines


def _health_lines(health: dict) -> list[str]:
    below = ", ".join(f"{c['class']} ({c['train']})" for c in health["classes_below_threshold"]) or "none"
    return [
        "health:",
        f"  duplicate images within a split: {health['duplicates']}",
        f"  val/test images identical to an earlier split's (leaks): {health['cross_split_duplicates']}",
        f"  classes with fewer than {health['threshold']} training images: {below}",
        "  source modes: " + (", ".join(f"{n} {mode}" for mode, n in health["modes"].items()) or "unknown")
        + (" (mixed)" if health["mixed_modes"] else ""),
        f"  EXIF-rotated photos (turned upright): {health['exif_rotated']}",
    ]
