"""KITTI object label files: one object per line, parsed leniently.

A line holds 15 space-separated fields (class, truncation, occlusion, alpha,
left, top, right, bottom, 3 dimensions, 3 location values, rotation_y) and an
optional 16th, a detection score.  Only the class and the 2-D box matter here;
the other numbers are checked to be numbers and otherwise ignored.

Nothing in a label file is fatal: a malformed line is reported, with the file
name and line number, and skipped.  When the image size is known, boxes are
clipped to the image; a box left with no area is dropped and reported.
"""
import math
from dataclasses import dataclass, field

DONTCARE = "dontcare"
# DIGITS' default class map without its class 0 (dontcare), in DIGITS' order.
KITTI_CLASSES = ("car", "van", "truck", "bus", "pickup", "vehicle-with-trailer",
                 "special-vehicle", "person", "person-fa", "person?", "people",
                 "cyclist", "tram", "person_sitting")
FIELD_NAMES = ("class", "truncation", "occlusion", "alpha", "left", "top", "right", "bottom",
               "height", "width", "length", "x", "y", "z", "rotation_y", "score")
_BOX = slice(4, 8)


@dataclass
class KittiObject:
    """One labelled object: its class (lower-cased) and box (left, top, right, bottom) in pixels."""
    name: str
    box: tuple[float, float, float, float]
    line: int
    score: float | None = None


@dataclass
class LabelFile:
    """What one label file held: the objects kept, what was wrong, how many boxes were clipped."""
    objects: list[KittiObject] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    clipped: int = 0


def read_label_file(path, name=None, image_size=None) -> LabelFile:
    """Parse the label file at ``path``; an unreadable file is one problem, not an exception.

    ``name`` is how problems refer to the file (default: the path);
    ``image_size`` ``(width, height)`` turns on clipping.
    """
    name = name or str(path)
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", errors="replace")
    except OSError as exc:
        return LabelFile(problems=[f"{name}: cannot be read ({exc.strerror or exc})"])
    return parse_labels(text, name, image_size)


def parse_labels(text: str, name: str, image_size=None) -> LabelFile:
    """Parse the text of a label file (see the module docstring)."""
    result = LabelFile()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = parse_line(line, number)
        except ValueError as exc:
            result.problems.append(f"{name}, line {number}: {exc}")
            continue
        if image_size is not None:
            obj = _clipped(obj, image_size, name, result)
        if obj is not None:
            result.objects.append(obj)
    return result


def parse_line(line: str, number: int) -> KittiObject:
    """One label line as a KittiObject; ValueError says what is wrong with it."""
    fields = line.split()
    if len(fields) not in (15, 16):
        raise ValueError(f"expected 15 or 16 fields, found {len(fields)}")
    values = [_number(text, index) for index, text in enumerate(fields[1:], start=1)]
    left, top, right, bottom = values[_BOX.start - 1:_BOX.stop - 1]
    if right < left or bottom < top:
        raise ValueError(f"box ({_format((left, top, right, bottom))}) has right < left or "
                         "bottom < top; the fields are left, top, right, bottom")
    score = values[14] if len(values) == 15 else None
    return KittiObject(fields[0].lower(), (left, top, right, bottom), number, score)


def _number(text: str, index: int) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"field {index + 1} ({FIELD_NAMES[index]}) is not a number: {text!r}")
    return value


def clip_box(box, image_size):
    """The box clipped to ``(width, height)``, or None if nothing of it is inside."""
    width, height = image_size
    left, top = max(box[0], 0.0), max(box[1], 0.0)
    right, bottom = min(box[2], float(width)), min(box[3], float(height))
    if right <= left or bottom <= top:
        return None
    return (left, top, right, bottom)


def _clipped(obj: KittiObject, image_size, name: str, result: LabelFile):
    box = clip_box(obj.box, image_size)
    if box is None:
        result.problems.append(
            f"{name}, line {obj.line}: box ({_format(obj.box)}) has no area inside the "
            f"{image_size[0]}x{image_size[1]} image; dropped")
        return None
    if box != obj.box:
        result.clipped += 1
        obj = KittiObject(obj.name, box, obj.line, obj.score)
    return obj


def _format(box) -> str:
    return ", ".join(f"{v:g}" for v in box)
