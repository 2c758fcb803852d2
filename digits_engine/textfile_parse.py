"""Read DIGITS' text-file dataset lists: `path label` lines and a labels file.

A list line is `<image path> <label>`, matched as DIGITS' create_db
`_parse_line` does with ``(.+)\\s+(\\d+)\\s*$``: the label is the last
whitespace-separated number, so spaces inside file names are fine and a
negative or non-numeric label does not match. Line i of the labels file
(blank lines left out) names numeric label i-1: the first line is label 0.

Differences from DIGITS: blank lines and lines starting with `#` are
ignored; every bad line is reported with its file and line number (DIGITS
skipped them one by one in its log); a label that the labels file does not
name is an error; a relative path with no folder prefix is relative to the
list file's own folder (DIGITS used the server's working directory).
"""
import os
import re

from .errors import DatasetError
from .folder_parse import FolderSplit

LINE = re.compile(r'(.+)\s+(\d+)\s*$')  # DIGITS' create_db._parse_line
NEGATIVE = re.compile(r'\s-\d+\s*$')
MAX_LISTED = 10  # problems spelled out in one message; the rest are counted
EXAMPLE = 'e.g. "images/cat 01.jpg 3"'


class BadLine(ValueError):
    """One list line that is not `path label`; the message says why."""


class ListError(DatasetError):
    """A list or labels file that cannot be used; the message names the file and the lines."""


def parse_line(line):
    """``(path, label)`` from one `path label` line, or ``BadLine`` saying what is wrong."""
    match = LINE.match(line.strip())
    if match:
        return match.group(1).rstrip(), int(match.group(2))
    text = line.strip()
    if NEGATIVE.search(text):
        raise BadLine(f'the label {text.split()[-1]} is negative; labels are 0, 1, 2, ... '
                      '(line 1 of the labels file names label 0)')
    if len(text.split()) < 2:
        raise BadLine(f'no label after the path; write the path, a space and a label number, {EXAMPLE}')
    raise BadLine(f'the label {text.split()[-1]!r} is not a whole number; write the path, a space and a '
                  f'label number, {EXAMPLE}')


def read_labels(path):
    """The class names of a labels file, in label order (line 1 is label 0)."""
    names = [line.strip() for line in _read_lines(path) if line.strip()]
    if len(names) < 2:
        raise ListError(f'The labels file {path} names {len(names)} class(es); it needs one class name a line, '
                        'at least two (line 1 names label 0, line 2 label 1, ...).')
    return names


def read_list(path, label_count, prefix=None, roots=None):
    """The images of a list file, each path made absolute with ``prefix`` (or
    the list's own folder); ``ListError`` listing every bad line with its
    number, a label the labels file does not name (``label_count`` names), and
    a path outside ``roots`` (the folders the server may read; None: any).
    """
    base = os.path.abspath(prefix) if prefix else os.path.dirname(os.path.abspath(path))
    items, problems = [], []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        try:
            image, label = parse_line(line)
            _check_label(label, label_count)
            image = os.path.join(base, os.path.expanduser(image))
            _check_inside(image, roots)
        except BadLine as exc:
            problems.append(f'line {number}: {exc}')
            continue
        items.append((os.path.normpath(image), label))
    if problems:
        raise ListError(_problems_message(path, problems))
    if not items:
        raise ListError(f'{path} lists no images; write one `path label` line per image, {EXAMPLE}.')
    return items


def parse_lists(labels_file, train_list, val_list=None, test_list=None, prefixes=None, roots=None):
    """A ``FolderSplit`` from the labels file and one list per split (val and
    test optional); ``prefixes`` maps a split to its image folder prefix.
    ``ListError`` names the file and lines of every problem found."""
    labels = read_labels(labels_file)
    prefixes = prefixes or {}
    split = FolderSplit(labels=labels)
    for stage, path in (('train', train_list), ('val', val_list), ('test', test_list)):
        if path:
            setattr(split, stage, read_list(path, len(labels), prefixes.get(stage), roots))
    return split


def _check_label(label, label_count):
    if label >= label_count:
        raise BadLine(f'label {label} has no name: the labels file names {label_count} classes, '
                      f'labels 0 to {label_count - 1}')


def _check_inside(image, roots):
    if roots is None or any(str(root) == os.sep for root in roots):  # any path may be read
        return
    real = os.path.realpath(image)
    if not any(real == str(r) or real.startswith(str(r).rstrip(os.sep) + os.sep) for r in roots):
        raise BadLine(f'{image} is outside the folders this server may read ({", ".join(map(str, roots))}); '
                      'ask the admin to add its folder to DIGITS_DATA_ROOTS')


def _problems_message(path, problems):
    shown = '; '.join(problems[:MAX_LISTED])
    more = f'; and {len(problems) - MAX_LISTED} more bad line(s)' if len(problems) > MAX_LISTED else ''
    return f'{path}: {shown}{more}.'


def _read_lines(path):
    try:
        with open(path, encoding='utf-8') as stream:  # newline=None: \r\n ends a line too
            return [line.rstrip('\n') for line in stream]
    except UnicodeDecodeError as exc:
        raise ListError(f'{path} is not a UTF-8 text file (byte {exc.start}); save it as UTF-8 text.') from None
    except OSError as exc:
        raise ListError(f'Cannot read {path}: {exc.strerror or exc}.') from None
