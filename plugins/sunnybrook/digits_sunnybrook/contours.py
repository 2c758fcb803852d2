"""Contour files: which image each belongs to, its polygon, and its mask.

A contour file holds one polygon, one "x y" pair of pixel coordinates a line
(the Sunnybrook challenge format). It belongs to the image of the same stem:
`IM-0001-0048-icontour-manual.txt` or `IM-0001-0048.txt` to `IM-0001-0048.dcm`.
Reading DICOM files is left to `dicom_image`.
"""
import math
import re
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

INNER_SUFFIX = "-icontour-manual"  # Sunnybrook's endocardium: the left-ventricle cavity
# Sunnybrook's other contours (epicardium, papillary muscles) are not the cavity: not used.
OTHER_SUNNYBROOK = re.compile(r"-(ocontour|p\d+)-manual$", re.IGNORECASE)


def find_contour_files(folder: Path) -> tuple[list[Path], list[Path]]:
    """(contour files, Sunnybrook contours of other structures that are not used) under `folder`."""
    texts = sorted(p for p in folder.rglob("*.txt") if p.is_file() and not p.name.startswith("."))
    used = [p for p in texts if not OTHER_SUNNYBROOK.search(p.stem)]
    return used, [p for p in texts if OTHER_SUNNYBROOK.search(p.stem)]


def image_stem(contour: Path) -> str:
    """The stem of the image a contour file belongs to."""
    stem = contour.stem
    if stem.lower().endswith(INNER_SUFFIX):
        return stem[: -len(INNER_SUFFIX)]
    return stem


def _folder_key(name: str) -> str:
    """Folder names compared without case or leading zeros: SC-HF-I-01 is SC-HF-I-1."""
    return re.sub(r"\d+", lambda m: str(int(m.group())), name.lower())


def match_contours(contours: list[Path], contour_root: Path,
                   images: list[Path], image_root: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """([(image path, contour path)], [(contour path, why it is not used)]).

    When several images share the contour's stem (one folder per patient),
    the image whose folders share the most names with the contour's wins.
    """
    by_stem = defaultdict(list)
    for image in images:
        by_stem[image.stem].append(image)
    # "<stem>-icontour-manual.txt" before "<stem>.txt": the Sunnybrook name wins a tie
    ordered = sorted(contours, key=lambda c: (c.stem == image_stem(c), str(c)))
    pairs, problems, taken = [], [], {}
    for contour in ordered:
        stem = image_stem(contour)
        candidates = by_stem.get(stem, [])
        if not candidates:
            problems.append((str(contour), f"no DICOM image {stem}.dcm in {image_root}: "
                                           "check the file name, or add the image."))
            continue
        if len(candidates) > 1:
            folders = {_folder_key(p) for p in contour.relative_to(contour_root).parent.parts}
            scores = [len(folders & {_folder_key(p) for p in c.relative_to(image_root).parent.parts})
                      for c in candidates]
            best = max(scores)
            candidates = [c for c, s in zip(candidates, scores) if s == best]
        if len(candidates) > 1:
            names = ", ".join(str(c) for c in candidates[:3])
            problems.append((str(contour), f"matches {len(candidates)} images ({names}): put each series' "
                                           "contours in a folder named like its image folder."))
            continue
        image = candidates[0]
        if image in taken:
            problems.append((str(contour), f"image {image} already has contour {taken[image]}: "
                                           "one contour per image is used."))
            continue
        taken[image] = contour
        pairs.append((str(image), str(contour)))
    pairs.sort()
    return pairs, problems


def read_polygon(path) -> list[tuple[float, float]]:
    """The (x, y) points of a contour file, or ValueError naming the file and the bad line."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ValueError(f"Cannot read contour file {path}: {exc.strerror or exc}.") from exc
    points = []
    for number, line in enumerate(text.splitlines(), 1):
        values = line.replace(",", " ").split()
        if not values:
            continue
        try:
            x, y = (float(v) for v in values)
        except ValueError:
            raise ValueError(f"Contour file {path}, line {number}: expected two numbers \"x y\", "
                             f"got {line.strip()!r}.") from None
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ValueError(f"Contour file {path}, line {number}: {line.strip()!r} is not a finite point.")
        points.append((x, y))
    if len(points) < 3:
        raise ValueError(f"Contour file {path} has {len(points)} point(s); a polygon needs at least 3 "
                         "lines of \"x y\" pixel coordinates.")
    return points


def polygon_mask(points, width: int, height: int, path="the contour") -> np.ndarray:
    """The HxW uint8 mask of the polygon (inside and outline = 1, elsewhere 0).

    Points must lie on the image: 0 <= x <= width-1, 0 <= y <= height-1
    (pixel coordinates); otherwise ValueError, for the contour of another image
    is the usual cause.
    """
    outside = [(x, y) for x, y in points if not (0 <= x <= width - 1 and 0 <= y <= height - 1)]
    if outside:
        x, y = outside[0]
        raise ValueError(f"contour {path} has points outside the {width}x{height} image of its DICOM file, "
                         f"e.g. ({x:g}, {y:g}) ({len(outside)} of {len(points)} points): is it the contour "
                         "of another image? Fix the file or remove it.")
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).polygon(points, fill=1, outline=1)
    return np.asarray(mask, dtype=np.uint8)
