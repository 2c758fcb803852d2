"""digits_engine.textfile_parse: DIGITS' `path label` lists and labels file
(the `_parse_line` cases of DIGITS' test_create_db.py, then every error with
its file and line number)."""
from pathlib import Path

import pytest

from digits_engine.errors import DatasetError
from digits_engine.textfile_parse import BadLine, ListError, parse_line, parse_lists, read_labels, read_list


# --------------------------------------------------------------------------- DIGITS' _parse_line cases

@pytest.mark.parametrize("line,path,label", [
    ("/path/image.jpg 0", "/path/image.jpg", 0),
    ("image.jpg 1", "image.jpg", 1),
    ("image.jpg 2\n", "image.jpg", 2),
    ("image.jpg           3", "image.jpg", 3),
    ("spaces in filename.jpg 4", "spaces in filename.jpg", 4),
    ("tab\tseparated.png\t12\r\n", "tab\tseparated.png", 12),
    ("ünïcode/çat 01.png 5", "ünïcode/çat 01.png", 5),
])
def test_parse_line_good(line, path, label):
    assert parse_line(line) == (path, label)


@pytest.mark.parametrize("line,why", [
    ("nolabel.jpg", "no label"),
    ("non-number.jpg five", "'five' is not a whole number"),
    ("negative.jpg -1", "-1 is negative"),
    ("float.jpg 1.5", "not a whole number"),
])
def test_parse_line_bad(line, why):
    with pytest.raises(BadLine, match=why):
        parse_line(line)


# --------------------------------------------------------------------------- files

def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def labels(tmp_path):
    return write(tmp_path / "labels.txt", "cat\n\ndog\nbird\n")


def test_labels_file_line_one_is_label_zero_and_blank_lines_are_skipped(labels):
    assert read_labels(labels) == ["cat", "dog", "bird"]


def test_labels_file_with_one_class_is_refused(tmp_path):
    with pytest.raises(ListError, match="names 1 class"):
        read_labels(write(tmp_path / "labels.txt", "only\n"))


def test_missing_labels_file(tmp_path):
    with pytest.raises(ListError, match="Cannot read .*nope.txt"):
        read_labels(tmp_path / "nope.txt")


def test_list_relative_paths_comments_and_blank_lines(tmp_path):
    (tmp_path / "lists").mkdir()
    listing = write(tmp_path / "lists" / "train.txt", "# a comment\n\nimages/a b.png 0\n/abs/c.png 2\n  indented.png 1  \n")
    items = read_list(listing, 3)
    assert items == [(str(tmp_path / "lists" / "images" / "a b.png"), 0), ("/abs/c.png", 2),
                     (str(tmp_path / "lists" / "indented.png"), 1)]


def test_list_prefix_is_where_relative_paths_start(tmp_path):
    listing = write(tmp_path / "train.txt", "x/1.png 0\n/elsewhere/2.png 1\n")
    items = read_list(listing, 2, prefix=str(tmp_path / "data"))
    assert items == [(str(tmp_path / "data" / "x" / "1.png"), 0), ("/elsewhere/2.png", 1)]


def test_every_bad_line_is_reported_with_its_number(tmp_path):
    listing = write(tmp_path / "train.txt", "good.png 0\nnolabel.png\n\nneg.png -3\nfive.png five\n"
                                            "unnamed.png 7\nok too.png 1\n")
    with pytest.raises(ListError) as caught:
        read_list(listing, 2)
    message = str(caught.value)
    assert str(listing) in message
    assert "line 2: no label" in message
    assert "line 4: the label -3 is negative" in message
    assert "line 5: the label 'five' is not a whole number" in message
    assert "line 6: label 7 has no name: the labels file names 2 classes, labels 0 to 1" in message
    assert "line 1:" not in message and "line 7:" not in message
    assert isinstance(caught.value, DatasetError)


def test_many_bad_lines_are_counted_not_all_spelled_out(tmp_path):
    listing = write(tmp_path / "train.txt", "".join(f"bad{i}.png x\n" for i in range(25)))
    with pytest.raises(ListError, match="line 10: .*and 15 more bad line"):
        read_list(listing, 2)


def test_empty_list_is_refused(tmp_path):
    with pytest.raises(ListError, match="lists no images"):
        read_list(write(tmp_path / "train.txt", "# nothing yet\n\n"), 2)


def test_list_that_is_not_utf8_says_so(tmp_path):
    listing = tmp_path / "train.txt"
    listing.write_bytes(b"caf\xe9.png 0\n")
    with pytest.raises(ListError, match="not a UTF-8 text file"):
        read_list(listing, 2)


def test_paths_outside_the_data_roots_are_refused(tmp_path):
    (tmp_path / "allowed").mkdir()
    listing = write(tmp_path / "allowed" / "train.txt", "in.png 0\n/etc/passwd 1\n../out.png 1\n")
    with pytest.raises(ListError) as caught:
        read_list(listing, 2, roots=[tmp_path / "allowed"])
    assert "line 2: /etc/passwd is outside" in str(caught.value)
    assert "line 3:" in str(caught.value) and "line 1:" not in str(caught.value)
    assert read_list(write(tmp_path / "ok.txt", "/etc/passwd 1\n"), 2, roots=[Path("/")]) == [("/etc/passwd", 1)]


def test_parse_lists_builds_the_split(tmp_path, labels):
    train = write(tmp_path / "train.txt", "t1.png 0\nt2.png 1\nt3.png 2\n")
    val = write(tmp_path / "val.txt", "v1.png 2\n")
    split = parse_lists(labels, train, val_list=val, prefixes={"val": str(tmp_path / "v")})
    assert split.labels == ["cat", "dog", "bird"]
    assert [label for _, label in split.train] == [0, 1, 2]
    assert split.val == [(str(tmp_path / "v" / "v1.png"), 2)]
    assert split.test == [] and split.skipped_classes == []
