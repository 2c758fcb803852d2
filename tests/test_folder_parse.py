"""Tests for digits_engine.folder_parse (after DIGITS' test_parse_folder.py)."""

import math
import os

import pytest

from digits_engine.folder_parse import (DatasetError, FolderSplit, add_stage_folder, label_name,
                                        parse_folder, three_way_split_indices)


def make_tree(root, counts, ext='.png'):
    """Create root/<class>/img_<i><ext> empty files; files are never opened."""
    for name, count in counts.items():
        directory = root / name
        directory.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (directory / f'img_{i:03d}{ext}').write_bytes(b'')
    return root


def _reference_split(n, pct_b, pct_c):
    """The reference pseudo-code, written out literally, with py2 rounding."""
    rnd = lambda x: int(math.floor(x + 0.5))  # noqa: E731
    pct_a = 100 - (pct_b + pct_c)
    if pct_a >= 100:
        return n, n
    if pct_b >= 100:
        return 0, n
    if pct_c >= 100:
        return 0, 0
    a = rnd(n * pct_a / 100)
    if pct_a and not a:
        a = 1
    b = rnd(n * pct_b / 100)
    if a + b > n:
        b = n - a
    if pct_b and not b:
        if a > 1:
            a, b = a - 1, 1
        elif a != n:
            b = 1
    c = n - (a + b)
    if pct_c and not c:
        if b > 1:
            b, c = b - 1, 1
        elif a > 1:
            a, c = a - 1, 1
    return a, a + b


# ------------------------------------------------ three_way_split_indices


@pytest.mark.parametrize('args,expected', [
    ((10, 25, 0), (8, 10)), ((10, 20, 10), (7, 9)), ((5, 25, 0), (4, 5)),
    ((4, 0, 50), (2, 2)), ((22, 31, 41), (6, 13)), ((1, 25, 0), (1, 1))])
def test_split_worked_values(args, expected):
    assert three_way_split_indices(*args) == expected


def test_split_digits_property():
    for size in (5, 22, 32):
        for pct_b in range(0, 100, 31):
            for pct_c in range(0, 100 - pct_b, 41):
                a, b = three_way_split_indices(size, pct_b, pct_c)
                ideal_a = size * (100 - pct_b - pct_c) / 100
                ideal_b = size * (100 - pct_c) / 100
                assert abs(ideal_a - a) <= 2, (size, pct_b, pct_c)
                assert abs(ideal_b - b) <= 2, (size, pct_b, pct_c)


def test_split_no_test_images_when_pct_test_is_zero():
    # Python 3's banker's rounding gave test lines here, e.g. (5, 10), (9, 50).
    for n in range(1, 60):
        for pct_val in range(101):
            a, b = three_way_split_indices(n, pct_val, 0)
            assert b == n, (n, pct_val)


def test_split_matches_reference_and_invariants():
    for n in range(1, 60):
        for pct_val in range(0, 101):
            for pct_test in range(0, 101 - pct_val):
                got = three_way_split_indices(n, pct_val, pct_test)
                assert got == _reference_split(n, pct_val, pct_test)
                a, b = got
                assert 0 <= a <= b <= n
                shares = (100 - pct_val - pct_test, pct_val, pct_test)
                for share, size in zip(shares, (a, b - a, n - b)):
                    if share == 0:
                        assert size == 0, (n, pct_val, pct_test)
                if n >= sum(1 for s in shares if s):
                    assert all(size for share, size in
                               zip(shares, (a, b - a, n - b)) if share)


def test_split_edge_cases():
    assert three_way_split_indices(0, 25, 0) == (0, 0)
    assert three_way_split_indices(7, 100, 0) == (0, 7)
    assert three_way_split_indices(7, 0, 100) == (0, 0)
    assert three_way_split_indices(7, 0, 0) == (7, 7)
    assert three_way_split_indices(9, 50, 50) == (0, 5)


def test_label_name():
    assert label_name('golden_retriever') == 'golden retriever'
    assert label_name('cat') == 'cat'


# ------------------------------------------------------------ parse_folder


def test_labels_sorted_with_underscores(tmp_path):
    make_tree(tmp_path, {'C': 2, 'A_b': 2, 'B': 2})
    result = parse_folder(tmp_path, val_pct=0)
    assert isinstance(result, FolderSplit)
    assert result.labels == ['A b', 'B', 'C']
    assert len(result.train) == 6 and not result.val and not result.test


def test_all_train_png_and_jpg(tmp_path):
    for name in 'ABC':
        (tmp_path / name).mkdir()
        (tmp_path / name / 'x.png').write_bytes(b'')
        (tmp_path / name / 'y.jpg').write_bytes(b'')
    result = parse_folder(tmp_path, val_pct=0, test_pct=0)
    assert result.labels == ['A', 'B', 'C']
    assert sorted(i for _, i in result.train) == [0, 0, 1, 1, 2, 2]


def test_paths_are_absolute_and_indices_match_labels(tmp_path, monkeypatch):
    make_tree(tmp_path, {'cat': 4, 'dog': 4})
    monkeypatch.chdir(tmp_path)
    result = parse_folder('.', val_pct=25)
    for path, index in result.train + result.val:
        assert os.path.isabs(path)
        assert os.path.basename(os.path.dirname(path)) == result.labels[index]


def test_recursive_discovery(tmp_path):
    make_tree(tmp_path, {'A': 1, 'A/sub': 1, 'A/sub/deeper': 1, 'B': 3})
    result = parse_folder(tmp_path, val_pct=0)
    assert result.labels == ['A', 'B']
    assert sum(1 for _, i in result.train if i == 0) == 3


def test_case_insensitive_extensions_and_others_ignored(tmp_path):
    make_tree(tmp_path, {'A': 2, 'B': 2})
    for name in ('one.PNG', 'two.JpEg', 'three.BMP', 'four.pgm', 'five.PPM', 'six.TIF', 'seven.tiff',
                 'eight.WebP', 'anim.GIF'):
        (tmp_path / 'A' / name).write_bytes(b'')
    for name in ('notes.txt', 'data.csv', 'clip.mp4', '.hidden.png'):
        (tmp_path / 'A' / name).write_bytes(b'')
    result = parse_folder(tmp_path, val_pct=0)
    names = sorted(os.path.basename(p) for p, i in result.train if i == 0)
    assert names == ['anim.GIF', 'eight.WebP', 'five.PPM', 'four.pgm', 'img_000.png', 'img_001.png', 'one.PNG',
                     'seven.tiff', 'six.TIF', 'three.BMP', 'two.JpEg']
    ignored = {os.path.basename(p): why for p, why in result.ignored_files}
    assert sorted(ignored) == ['clip.mp4', 'data.csv', 'notes.txt']
    assert 'not an image file (.mp4)' in ignored['clip.mp4']


def test_files_at_top_level_and_hidden_dirs_are_not_classes(tmp_path):
    make_tree(tmp_path, {'A': 2, 'B': 2, '.cache': 5})
    (tmp_path / 'stray.png').write_bytes(b'')
    assert parse_folder(tmp_path).labels == ['A', 'B']


def test_max_per_class(tmp_path):
    make_tree(tmp_path, {'A': 10, 'B': 3})
    result = parse_folder(tmp_path, val_pct=0, max_per_class=4, seed=1)
    counts = [sum(1 for _, i in result.train if i == k) for k in (0, 1)]
    assert counts == [4, 3]
    assert len(result.warnings) == 1
    assert result.warnings[0].startswith('Reached maximum limit of 4')
    assert "'A'" in result.warnings[0]


def test_min_per_class_drops_the_small_class(tmp_path):
    make_tree(tmp_path, {'A': 8, 'B': 5, 'C': 8, 'D': 8})
    result = parse_folder(tmp_path, min_per_class=6)
    assert result.labels == ['A', 'C', 'D']
    assert [name for name, _ in result.skipped_classes] == ['B']
    assert 'minimum per class is 6' in result.skipped_classes[0][1]
    for path, index in result.train + result.val:
        assert os.path.basename(os.path.dirname(path)) == result.labels[index]


def test_empty_class_is_skipped_with_reason(tmp_path):
    make_tree(tmp_path, {'A': 3, 'B': 3, 'empty': 0})
    (tmp_path / 'empty' / 'readme.txt').write_text('x')
    result = parse_folder(tmp_path)
    assert result.labels == ['A', 'B']
    assert result.skipped_classes[0][0] == 'empty'
    assert 'no images' in result.skipped_classes[0][1]


def test_class_smaller_than_number_of_splits_is_skipped(tmp_path):
    make_tree(tmp_path, {'A': 5, 'B': 2, 'C': 5})
    result = parse_folder(tmp_path, val_pct=20, test_pct=10, min_per_class=1)
    assert result.labels == ['A', 'C']
    assert '3 non-empty splits' in result.skipped_classes[0][1]


def test_stratified_counts(tmp_path):
    make_tree(tmp_path, {'A': 10, 'B': 10, 'C': 10})
    result = parse_folder(tmp_path, val_pct=20, test_pct=10, seed=0)
    for index in range(3):
        counts = [sum(1 for _, i in split if i == index)
                  for split in (result.train, result.val, result.test)]
        assert counts == [7, 2, 1]
    all_paths = [p for p, _ in result.train + result.val + result.test]
    assert len(set(all_paths)) == 30


def test_zero_test_pct_gives_no_test_images(tmp_path):
    make_tree(tmp_path, {'A': 5, 'B': 9})
    result = parse_folder(tmp_path, val_pct=50, test_pct=0)
    assert result.test == []


def test_seed_reproducibility(tmp_path):
    make_tree(tmp_path, {'A': 30, 'B': 30})
    first = parse_folder(tmp_path, val_pct=25, seed=42)
    second = parse_folder(tmp_path, val_pct=25, seed=42)
    other = parse_folder(tmp_path, val_pct=25, seed=43)
    assert first == second
    assert first.train != other.train


def test_fewer_than_two_classes(tmp_path):
    make_tree(tmp_path, {'only': 5})
    with pytest.raises(DatasetError, match=r'Found 1 usable class.*<class'):
        parse_folder(tmp_path)


def test_two_folders_but_one_usable(tmp_path):
    make_tree(tmp_path, {'A': 5, 'B': 1})
    with pytest.raises(DatasetError, match='B: only 1 image'):
        parse_folder(tmp_path)


def test_empty_folder(tmp_path):
    with pytest.raises(DatasetError, match='Found 0 usable'):
        parse_folder(tmp_path)


def test_missing_folder(tmp_path):
    missing = tmp_path / 'nope'
    with pytest.raises(DatasetError, match='not found.*nope'):
        parse_folder(missing)


def test_file_instead_of_folder(tmp_path):
    path = tmp_path / 'file.png'
    path.write_bytes(b'')
    with pytest.raises(DatasetError, match='Not a directory'):
        parse_folder(path)


@pytest.mark.parametrize('val,test,message', [
    (-1, 0, 'between 0 and 100'), (101, 0, 'between 0 and 100'),
    (0, 120, 'between 0 and 100'), (60, 50, 'must not exceed 100'),
    ('25', 0, 'must be a number')])
def test_bad_percentages(tmp_path, val, test, message):
    make_tree(tmp_path, {'A': 5, 'B': 5})
    with pytest.raises(DatasetError, match=message):
        parse_folder(tmp_path, val_pct=val, test_pct=test)


@pytest.mark.parametrize('kwargs', [{'min_per_class': 0},
                                    {'min_per_class': 3, 'max_per_class': 2}])
def test_bad_limits(tmp_path, kwargs):
    make_tree(tmp_path, {'A': 5, 'B': 5})
    with pytest.raises(DatasetError, match='per_class'):
        parse_folder(tmp_path, **kwargs)


def test_symlink_loop_terminates(tmp_path):
    make_tree(tmp_path, {'A': 2, 'B': 2})
    os.symlink(tmp_path / 'A', tmp_path / 'A' / 'loop')
    result = parse_folder(tmp_path, val_pct=0)
    assert sum(1 for _, i in result.train if i == 0) == 2
    [(path, why)] = result.ignored_files
    assert path == str(tmp_path / 'A' / 'loop') and 'already searched' in why


def test_symlinks_to_files_and_folders_are_followed(tmp_path):
    make_tree(tmp_path / 'src', {'shared': 2})
    make_tree(tmp_path / 'data', {'A': 1, 'B': 2})
    os.symlink(tmp_path / 'src' / 'shared' / 'img_000.png', tmp_path / 'data' / 'A' / 'linked.png')
    os.symlink(tmp_path / 'src' / 'shared', tmp_path / 'data' / 'C')
    result = parse_folder(tmp_path / 'data', val_pct=0)
    assert result.labels == ['A', 'B', 'C'] and len(result.train) == 6
    assert result.ignored_files == []


def test_hidden_files_and_macosx_folders_are_ignored_silently(tmp_path):
    make_tree(tmp_path, {'A': 2, 'B': 2, '__MACOSX': 3, '__MACOSX/A': 2, 'A/.thumbs': 2})
    (tmp_path / 'A' / '.DS_Store').write_bytes(b'')
    (tmp_path / 'A' / '._img_000.png').write_bytes(b'')
    result = parse_folder(tmp_path, val_pct=0)
    assert result.labels == ['A', 'B'] and len(result.train) == 4
    assert result.ignored_files == [] and result.skipped_classes == []


def test_unicode_and_spaces_in_class_and_file_names(tmp_path):
    make_tree(tmp_path, {'chat noir': 2, 'épée_longue': 2})
    (tmp_path / 'chat noir' / 'photo 1 ü.jpg').write_bytes(b'')
    result = parse_folder(tmp_path, val_pct=0)
    assert result.labels == ['chat noir', 'épée longue']
    assert str(tmp_path / 'chat noir' / 'photo 1 ü.jpg') in [p for p, _ in result.train]


# ---------------------------------------------------------------- separate validation / test folders

def test_stage_folder_goes_whole_to_its_split_under_the_training_labels(tmp_path):
    make_tree(tmp_path / 'train', {'A': 4, 'B': 4, 'C': 4})
    make_tree(tmp_path / 'val', {'B': 3, 'A': 2, 'Z': 5, 'C': 1})
    result = parse_folder(tmp_path / 'train', val_pct=0)
    add_stage_folder(result, 'val', tmp_path / 'val', min_per_class=2)
    assert len(result.train) == 12
    assert sorted(result.val) == sorted([(str(tmp_path / 'val' / 'A' / f'img_{i:03d}.png'), 0) for i in range(2)]
                                        + [(str(tmp_path / 'val' / 'B' / f'img_{i:03d}.png'), 1) for i in range(3)])
    reasons = dict(result.skipped_classes)
    assert reasons['Z'].startswith('validation folder') and 'not a class of the training folder' in reasons['Z']
    assert reasons['C'] == 'validation folder: only 1 image(s); the minimum per class is 2'


def test_stage_folder_max_per_class_and_missing_classes(tmp_path):
    make_tree(tmp_path / 'train', {'A': 4, 'B': 4})
    make_tree(tmp_path / 'test', {'A': 6})
    result = parse_folder(tmp_path / 'train', val_pct=25)
    add_stage_folder(result, 'test', tmp_path / 'test', min_per_class=1, max_per_class=4, seed=3)
    assert len(result.test) == 4 and {label for _, label in result.test} == {0}
    assert any("class 'B' has no folder in the test folder" in w for w in result.warnings)
    assert any('maximum limit of 4' in w for w in result.warnings)


def test_stage_folder_without_training_classes_is_an_error(tmp_path):
    make_tree(tmp_path / 'train', {'A': 4, 'B': 4})
    make_tree(tmp_path / 'val', {'X': 4, 'Y': 4})
    result = parse_folder(tmp_path / 'train', val_pct=0)
    with pytest.raises(DatasetError, match='validation folder .* no usable images of the training classes'):
        add_stage_folder(result, 'val', tmp_path / 'val')
    with pytest.raises(DatasetError, match='not found'):
        add_stage_folder(result, 'test', tmp_path / 'nowhere')


def test_dataset_error_is_value_error():
    assert issubclass(DatasetError, ValueError)
