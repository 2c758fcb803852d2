"""digits_engine.archive_extract and uploads: small archives crafted here, each
trying one way out of the extraction folder or one kind of bomb; a refused
archive must leave nothing behind."""
import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from digits_engine import uploads
from digits_engine.archive_extract import ArchiveError, Budget, extract

MB = 2 ** 20


def make_zip(path: Path, entries: dict) -> Path:
    """entries: name -> bytes, or name -> (bytes, Unix st_mode of the entry)."""
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)  # kept as written: ZipFile.write would clean a name like "../x"
            info.compress_type = zipfile.ZIP_DEFLATED
            if isinstance(data, tuple):
                info.create_system, info.external_attr = 3, data[1] << 16
                data = data[0]
            zf.writestr(info, data)
    return path


def make_tar(path: Path, members: list, mode: str = "w") -> Path:
    """members: TarInfo objects (regular files get `size` bytes of b'x')."""
    with tarfile.open(path, mode) as tf:
        for info in members:
            tf.addfile(info, io.BytesIO(b"x" * info.size) if info.isreg() else None)
    return path


def tar_info(name: str, kind=tarfile.REGTYPE, size: int = 0, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, linkname
    return info


def assert_nothing_left(dest: Path) -> None:
    assert not dest.exists()
    assert [p.name for p in dest.parent.iterdir() if ".partial-" in p.name] == []


def refused(archive: Path, dest: Path, match: str, max_bytes: int = MB, max_entries: int = 100) -> None:
    with pytest.raises(ArchiveError, match=match):
        extract(archive, dest, max_bytes, max_entries)
    assert_nothing_left(dest)


# --------------------------------------------------------------------------- what is extracted

def test_zip_of_class_folders_with_unicode_and_spaces(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"top/": b"", "top/chat noir/é 1.png": b"png", "top/dog/2.PNG": b"x",
                                            "top/__MACOSX/._2.PNG": b"junk"})
    dest = extract(archive, tmp_path / "out", MB, 100)
    assert (dest / "top" / "chat noir" / "é 1.png").read_bytes() == b"png"
    assert (dest / "top" / "dog" / "2.PNG").exists()
    assert uploads.class_root(dest, "a.zip") == dest / "top"  # the single top folder is followed


def test_tar_gz_extracts_files_only_as_plain_files(tmp_path):
    setuid = tar_info("cat/1.png", size=3)
    setuid.mode = 0o4755
    archive = make_tar(tmp_path / "a.tar.gz", [tar_info("cat", tarfile.DIRTYPE), setuid, tar_info("dog/2.png", size=2)],
                       mode="w:gz")
    dest = extract(archive, tmp_path / "out", MB, 100)
    assert (dest / "cat" / "1.png").read_bytes() == b"xxx"
    assert not (dest / "cat" / "1.png").stat().st_mode & stat.S_ISUID
    assert uploads.class_root(dest, "a.tar.gz") == dest


def test_an_existing_empty_destination_is_fine_a_full_one_is_not(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"c/1.png": b"x"})
    (tmp_path / "empty").mkdir()
    assert (extract(archive, tmp_path / "empty", MB, 10) / "c" / "1.png").exists()
    with pytest.raises(ArchiveError, match="already holds files"):
        extract(archive, tmp_path / "empty", MB, 10)


# --------------------------------------------------------------------------- entries that escape

@pytest.mark.parametrize("name,why", [
    ("../evil.png", "outside"),
    ("cat/../../evil.png", "outside"),
    ("/tmp/evil.png", "absolute path"),
    ("C:/evil.png", "absolute path"),
    ("..\\evil.png", "outside"),
])
def test_zip_entries_leaving_the_folder_are_refused(tmp_path, name, why):
    archive = make_zip(tmp_path / "a.zip", {"cat/1.png": b"fine", name: b"evil"})
    refused(archive, tmp_path / "out", why)
    assert not (tmp_path / "evil.png").exists()


def test_tar_entry_leaving_the_folder_is_refused_after_good_ones_were_written(tmp_path):
    archive = make_tar(tmp_path / "a.tar", [tar_info("cat/1.png", size=4), tar_info("../evil.png", size=4)])
    refused(archive, tmp_path / "out", "outside")
    assert not (tmp_path / "evil.png").exists()


@pytest.mark.parametrize("info,why", [
    (tar_info("cat/link.png", tarfile.SYMTYPE, linkname="/etc/passwd"), "symbolic link"),
    (tar_info("cat/hard.png", tarfile.LNKTYPE, linkname="cat/1.png"), "hard link"),
    (tar_info("cat/dev", tarfile.CHRTYPE), "device or special file"),
    (tar_info("cat/fifo", tarfile.FIFOTYPE), "device or special file"),
])
def test_tar_links_and_devices_are_refused(tmp_path, info, why):
    archive = make_tar(tmp_path / "a.tar", [tar_info("cat/1.png", size=4), info])
    refused(archive, tmp_path / "out", why)


def test_zip_symlink_entry_is_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"cat/1.png": b"x", "cat/link": (b"/etc/passwd", stat.S_IFLNK | 0o777)})
    refused(archive, tmp_path / "out", "symbolic link")


def test_zip_device_entry_is_refused(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {"cat/dev": (b"", stat.S_IFCHR | 0o644)})
    refused(archive, tmp_path / "out", "device or special file")


# --------------------------------------------------------------------------- bombs

def test_too_many_small_entries(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {f"cat/{i}.png": b"x" for i in range(11)})
    refused(archive, tmp_path / "out", "more than 10 files and folders", max_entries=10)
    assert extract(archive, tmp_path / "ok", MB, 11)  # at the limit it is fine


def test_small_entries_whose_declared_total_passes_the_cap(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {f"cat/{i}.png": b"\0" * 1000 for i in range(5)})
    assert archive.stat().st_size < 3000  # the archive itself is small; what it extracts to is not
    refused(archive, tmp_path / "out", "more than 3,000 bytes", max_bytes=3000)


def test_tar_gz_bomb_is_refused_at_its_header(tmp_path):
    archive = make_tar(tmp_path / "bomb.tgz", [tar_info("cat/zeros.png", size=4 * MB)], mode="w:gz")
    assert archive.stat().st_size < 64 * 1024
    refused(archive, tmp_path / "out", "zip bomb", max_bytes=MB)


def test_bytes_written_are_counted_beyond_what_headers_declare():
    budget = Budget(max_total_bytes=100, max_entries=10)
    budget.add_entry("a.png", 10)  # declares 10 bytes
    budget.add_written("a.png", 60)
    with pytest.raises(ArchiveError, match="grew past 100 bytes .* more than its headers declare"):
        budget.add_written("a.png", 41)


def test_tar_member_count_is_checked_while_reading(tmp_path):
    archive = make_tar(tmp_path / "a.tar.gz", [tar_info(f"c/{i}.png", size=1) for i in range(6)], mode="w:gz")
    refused(archive, tmp_path / "out", "more than 5 files", max_entries=5)


# --------------------------------------------------------------------------- not archives

def test_a_text_file_is_not_an_archive(tmp_path):
    fake = tmp_path / "fake.zip"
    fake.write_text("hello")
    refused(fake, tmp_path / "out", "not a .zip, .tar")


def test_a_truncated_zip_is_damaged(tmp_path):
    archive = make_zip(tmp_path / "a.zip", {f"cat/{i}.png": bytes(range(256)) * 20 for i in range(3)})
    archive.write_bytes(archive.read_bytes()[:300])
    refused(archive, tmp_path / "out", "could not be extracted|not a .zip")


# --------------------------------------------------------------------------- uploads

def test_unpack_a_file_object_into_the_uploads_folder(tmp_path, jobs_dir):
    archive = make_zip(tmp_path / "shapes.zip", {"shapes/circle/1.png": b"x", "shapes/square/1.png": b"y"})
    root = uploads.unpack(io.BytesIO(archive.read_bytes()), "shapes.zip", max_bytes=MB)
    assert root.name == "shapes" and uploads.is_upload_folder(root)
    assert root.parent.parent.parent == jobs_dir / "uploads"
    assert sorted(p.name for p in root.parent.parent.iterdir()) == ["files"]  # the saved upload is gone


def test_unpack_refuses_an_upload_over_the_limit_and_an_archive_without_classes(tmp_path, jobs_dir):
    archive = make_zip(tmp_path / "a.zip", {"one/1.png": os.urandom(5000)})  # incompressible
    with pytest.raises(ArchiveError, match="larger than the upload limit"):
        uploads.unpack(io.BytesIO(archive.read_bytes()), "a.zip", max_bytes=1000)
    with pytest.raises(ArchiveError, match="holds no class folders"):
        uploads.unpack(archive, "a.zip")
    assert list((jobs_dir / "uploads").iterdir()) == []


def test_archive_names(tmp_path):
    assert uploads.check_name("Data.TAR.GZ") is None and uploads.check_name("x.tgz") is None
    assert "not a .zip" in uploads.check_name("photos.rar")
