"""Turn a class-per-folder image tree into stratified train/val/test lists.

The layout is ``folder/<class>/<images>``: each immediate sub-directory of
``folder`` is a class (sorted by name; ``_`` in the name becomes a space) and
its images are found recursively by extension.  Each class is shuffled and
split on its own with DIGITS' ``three_way_split_indices``, so every split
keeps the class proportions.  Files are only listed here, never opened:
decoding errors are reported by the ingest step.

Differences from DIGITS' ``parse_folder.py``: rounding is half-up (as on
Python 2), so a zero test percentage never yields test images; the class that
is too small is the one dropped (DIGITS popped the last label); hidden files
and directories and ``__MACOSX`` folders are ignored; tiff, webp and gif are
images too; a folder reached twice through symbolic links (a loop) is listed
with the reason and not searched again; a seed makes the shuffle
reproducible; and with ``max_per_class`` the kept images are a random sample
of the class rather than the first ones found.

``add_stage_folder`` is DIGITS' second parse for a separate validation or
test folder: all of its images go to that split, under the training labels.
"""

import os
import random
from dataclasses import dataclass, field

from .errors import DatasetError
from .images import SUPPORTED_EXTENSIONS, round_half_up

# DIGITS' formats plus tiff, webp and gif (its first frame); dict.fromkeys keeps the order and drops repeats
IMAGE_EXTENSIONS = tuple(dict.fromkeys(SUPPORTED_EXTENSIONS + ('.tif', '.tiff', '.webp', '.gif')))
STAGE_FOLDERS = {'val': 'validation folder', 'test': 'test folder'}

LAYOUT_HINT = ('Expected layout: <folder>/<class name>/<images>, e.g. '
               'data/cat/001.jpg and data/dog/001.jpg, with at least two '
               'class sub-folders.')


@dataclass
class FolderSplit:
    """Result of ``parse_folder``.

    ``train``, ``val`` and ``test`` hold ``(absolute path, label index)``
    pairs grouped by class in label order (not shuffled across classes).
    ``skipped_classes`` holds ``(class name, reason)`` for dropped classes.
    """
    labels: list[str] = field(default_factory=list)
    train: list[tuple[str, int]] = field(default_factory=list)
    val: list[tuple[str, int]] = field(default_factory=list)
    test: list[tuple[str, int]] = field(default_factory=list)
    skipped_classes: list[tuple[str, str]] = field(default_factory=list)
    ignored_files: list[tuple[str, str]] = field(default_factory=list)  # (path, why it is not an image)
    warnings: list[str] = field(default_factory=list)


def label_name(dirname):
    """The label shown for a class directory: underscores become spaces."""
    return dirname.replace('_', ' ')


def check_percentages(pct_val, pct_test):
    """Raise ``DatasetError`` unless 0 <= each <= 100 and their sum <= 100."""
    for name, value in (('val_pct', pct_val), ('test_pct', pct_test)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise DatasetError(f'{name} must be a number, got {value!r}')
        if not 0 <= value <= 100:
            raise DatasetError(f'{name} must be between 0 and 100, got {value}')
    if pct_val + pct_test > 100:
        raise DatasetError(f'val_pct + test_pct must not exceed 100 (got '
                           f'{pct_val} + {pct_test} = {pct_val + pct_test}); '
                           f'the remainder is the training share')


def three_way_split_indices(n, pct_val, pct_test):
    """Cut points ``(a, b)`` for n items: train [:a], val [a:b], test [b:].

    DIGITS' formula with half-up rounding: every split with a non-zero
    percentage gets at least one item when possible, and a zero percentage
    always gets none.
    """
    check_percentages(pct_val, pct_test)
    pct_train = 100 - (pct_val + pct_test)
    if n <= 0:
        return 0, 0
    if pct_train >= 100:
        return n, n
    if pct_val >= 100:
        return 0, n
    if pct_test >= 100:
        return 0, 0
    a = round_half_up(n * pct_train / 100) or (1 if pct_train else 0)
    b = min(round_half_up(n * pct_val / 100), n - a)
    if pct_val and not b:
        if a > 1:
            a, b = a - 1, 1
        elif a != n:
            b = 1
    if pct_test and a + b == n:
        if b > 1:
            b -= 1
        elif a > 1:
            a -= 1
    return a, a + b


def parse_folder(folder, val_pct=25, test_pct=0, min_per_class=2,
                 max_per_class=None, seed=None):
    """List and split the images under ``folder/<class>/...``.

    Classes with no images, with fewer images than there are non-empty
    splits, or with fewer than ``min_per_class`` images are skipped.  At most
    ``max_per_class`` images (a random sample) are kept per class.  ``seed``
    makes the shuffle reproducible.  Raises ``DatasetError`` for bad settings,
    a missing folder, or fewer than two usable classes.
    """
    root = os.path.abspath(os.fspath(folder))
    ignored = []
    classes = {dirname: find_images(os.path.join(root, dirname), ignored) for dirname in _class_dirs(root)}
    result = split_classes(classes, root, val_pct, test_pct, min_per_class, max_per_class, seed)
    result.ignored_files.extend(ignored)
    return result


def split_classes(classes, where, val_pct=25, test_pct=0, min_per_class=2,
                  max_per_class=None, seed=None):
    """Split listed images, ``{class folder name: [image paths or keys]}``,
    with DIGITS' rules (see ``parse_folder``); ``where`` names the source in
    error messages."""
    check_percentages(val_pct, test_pct)
    _check_limits(min_per_class, max_per_class)
    rng = random.Random(seed)
    splits = (100 - val_pct - test_pct, val_pct, test_pct)
    required = sum(1 for pct in splits if pct > 0)
    result = FolderSplit()
    for dirname in sorted(classes):
        name = label_name(dirname)
        files = sorted(classes[dirname])
        rng.shuffle(files)
        files = _cap(files, max_per_class, name, result.warnings)
        reason = _skip_reason(len(files), required, min_per_class)
        if reason:
            result.skipped_classes.append((name, reason))
        else:
            _add_class(result, name, files, val_pct, test_pct)
    _check_enough_classes(result, where)
    return result


def add_stage_folder(result, stage, folder, min_per_class=2, max_per_class=None, seed=None):
    """Put every image of ``folder/<class>/...`` into ``result``'s ``stage``
    split ('val' or 'test'), labelled as the training class of the same name.

    As DIGITS' second ParseFolderTask (100% to that split, labels read from
    the training parse): classes the training folder does not have, and
    classes with fewer than ``min_per_class`` images, are skipped with the
    reason; at most ``max_per_class`` images (a random sample) are kept.
    Raises ``DatasetError`` when no image of a training class is left.
    """
    where = STAGE_FOLDERS[stage]
    _check_limits(min_per_class, max_per_class)
    root = os.path.abspath(os.fspath(folder))
    rng = random.Random(seed)
    index = {name: i for i, name in enumerate(result.labels)}
    items, present = getattr(result, stage), set()
    for dirname in _class_dirs(root):
        name = label_name(dirname)
        if name not in index:
            result.skipped_classes.append((name, f'{where} {root}: not a class of the training folder'))
            continue
        present.add(name)
        files = sorted(find_images(os.path.join(root, dirname), result.ignored_files))
        rng.shuffle(files)
        files = _cap(files, max_per_class, name, result.warnings)
        reason = _skip_reason(len(files), 1, min_per_class)
        if reason:
            result.skipped_classes.append((name, f'{where}: {reason}'))
            continue
        items.extend((path, index[name]) for path in files)
    result.warnings.extend(f"class '{name}' has no folder in the {where} {root}"
                           for name in result.labels if name not in present)
    if not items:
        raise DatasetError(f'The {where} {root} has no usable images of the training classes '
                           f'({", ".join(result.labels)}). Expected layout: <folder>/<class name>/<images> '
                           'with the class names of the training folder.')


def find_images(directory, ignored=None):
    """Sorted-walk ``directory`` recursively, following symbolic links;
    return paths of image files.

    Other visible files, and folders reached a second time through a link
    (a loop), are appended to ``ignored`` as (path, reason)."""
    found, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(directory, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames[:] = []
            if ignored is not None:
                ignored.append((dirpath, f'a link to the folder {real}, which was already searched '
                                         '(a symbolic link loop or a second link); not searched again'))
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if is_visible_dir(d))
        for name in sorted(filenames):
            if is_image_name(name):
                found.append(os.path.join(dirpath, name))
            elif ignored is not None and not name.startswith('.'):
                ignored.append((os.path.join(dirpath, name), not_an_image(name)))
    return found


def not_an_image(filename):
    """Why a file is left out of a dataset, by its name."""
    ext = os.path.splitext(filename)[1] or 'no extension'
    return (f'not an image file ({ext}); images end in '
            f'{", ".join(IMAGE_EXTENSIONS)}')


def is_image_name(filename):
    """True for a non-hidden file whose extension is supported (any case)."""
    return (not filename.startswith('.')
            and os.path.splitext(filename)[1].lower() in IMAGE_EXTENSIONS)


def is_visible_dir(dirname):
    """False for hidden folders and the ``__MACOSX`` folders of zips made on a Mac: never searched."""
    return not dirname.startswith('.') and dirname != '__MACOSX'


def _check_limits(min_per_class, max_per_class):
    if not isinstance(min_per_class, int) or min_per_class < 1:
        raise DatasetError(f'min_per_class must be an integer >= 1, '
                           f'got {min_per_class!r}')
    if max_per_class is not None and (not isinstance(max_per_class, int)
                                      or max_per_class < min_per_class):
        raise DatasetError(f'max_per_class must be empty or an integer >= '
                           f'min_per_class ({min_per_class}), got '
                           f'{max_per_class!r}')


def _class_dirs(root):
    if not os.path.exists(root):
        raise DatasetError(f'Dataset folder not found: {root}')
    if not os.path.isdir(root):
        raise DatasetError(f'Not a directory: {root}. {LAYOUT_HINT}')
    return sorted(entry.name for entry in os.scandir(root)
                  if entry.is_dir() and is_visible_dir(entry.name))


def _cap(files, max_per_class, name, warnings):
    if max_per_class is None or len(files) <= max_per_class:
        return files
    warnings.append(f"Reached maximum limit of {max_per_class} images for "
                    f"class '{name}': using a random {max_per_class} of "
                    f"{len(files)}")
    return files[:max_per_class]


def _skip_reason(count, required, min_per_class):
    if count == 0:
        return ('no images (supported extensions: '
                f'{", ".join(IMAGE_EXTENSIONS)})')
    if count < required:
        return (f'only {count} image(s), but each of the {required} '
                f'non-empty splits needs at least one')
    if count < min_per_class:
        return f'only {count} image(s); the minimum per class is {min_per_class}'
    return None


def _add_class(result, name, files, val_pct, test_pct):
    if name in result.labels:
        result.warnings.append(f"Two class folders share the label '{name}'")
    index = len(result.labels)
    result.labels.append(name)
    a, b = three_way_split_indices(len(files), val_pct, test_pct)
    result.train.extend((path, index) for path in files[:a])
    result.val.extend((path, index) for path in files[a:b])
    result.test.extend((path, index) for path in files[b:])


def _check_enough_classes(result, root):
    if len(result.labels) >= 2:
        return
    skipped = '; '.join(f'{n}: {why}' for n, why in result.skipped_classes)
    detail = f' Skipped classes - {skipped}.' if skipped else ''
    raise DatasetError(f'Found {len(result.labels)} usable class(es) in {root};'
                       f' at least 2 are needed.{detail} {LAYOUT_HINT}')
