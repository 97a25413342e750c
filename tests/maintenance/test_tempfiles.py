import logging
import os
from datetime import UTC, datetime, timedelta

import pytest

from maintenance import tempfiles
from maintenance.tempfiles import TempFolderError, temp_files_clean

NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)
MAX_AGE = timedelta(hours=24)
CUTOFF = NOW - MAX_AGE
OLD = CUTOFF - timedelta(days=3)
RECENT = NOW - timedelta(minutes=5)


def set_mtime(path, moment, *, follow_symlinks=True):
    ns = (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) * 1000
    os.utime(path, ns=(ns, ns), follow_symlinks=follow_symlinks)


def make_file(path, moment, content="data"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    set_mtime(path, moment)
    return path


def make_dir(path, moment):
    path.mkdir(parents=True, exist_ok=True)
    set_mtime(path, moment)
    return path


@pytest.fixture
def folder(tmp_path):
    return tmp_path / "tmp"


@pytest.fixture
def outside(tmp_path):
    """A folder next to the temporary folder whose old files must survive every run."""
    return tmp_path / "outside"


def clean(folder, **options):
    return temp_files_clean(folder=folder, now=NOW, max_age=MAX_AGE, **options)


@pytest.mark.parametrize(
    ("modified_at", "removed"),
    [
        (CUTOFF - timedelta(seconds=1), True),
        (CUTOFF, False),
        (CUTOFF + timedelta(seconds=1), False),
    ],
    ids=["one-second-before-cutoff", "exactly-at-cutoff", "one-second-after-cutoff"],
)
def test_file_age_at_cutoff_boundary(folder, modified_at, removed):
    path = make_file(folder / "upload.part", modified_at)

    outcome = clean(folder)

    assert path.exists() is not removed
    assert outcome.counts["files"] == (1 if removed else 0)
    assert outcome.counts["kept_recent"] == (0 if removed else 1)


def test_old_files_removed_recent_kept_with_log_lines(folder, caplog):
    old = make_file(folder / "old.csv", OLD)
    recent = make_file(folder / "recent.csv", RECENT)

    with caplog.at_level(logging.INFO, logger="maintenance.tempfiles"):
        outcome = clean(folder)

    assert not old.exists()
    assert recent.exists()
    assert outcome.counts == {"files": 1, "directories": 0, "kept_recent": 1, "skipped": 0}
    assert outcome.more is False
    assert "temporary folder: removed old.csv (modified 2026-11-30T03:00:00+00:00)" in caplog.messages
    assert outcome.message.startswith("removed 1 files and 0 directories older than 1 day, 0:00:00 from ")


def test_nested_directories_cleaned_and_emptied_ones_removed(folder):
    make_dir(folder, OLD)
    deep_old = make_file(folder / "a" / "b" / "c" / "old.bin", OLD)
    make_dir(folder / "a" / "b" / "c", OLD)
    make_dir(folder / "a" / "b", OLD)
    mixed_old = make_file(folder / "a" / "old.txt", OLD)
    mixed_recent = make_file(folder / "a" / "recent.txt", RECENT)
    make_dir(folder / "a", OLD)
    fresh_empty = make_dir(folder / "fresh", RECENT)

    outcome = clean(folder)

    assert not deep_old.exists()
    assert not mixed_old.exists()
    assert not (folder / "a" / "b").exists()
    assert mixed_recent.exists()
    assert (folder / "a").is_dir()
    assert fresh_empty.is_dir()
    assert folder.is_dir()
    assert outcome.counts["files"] == 2
    assert outcome.counts["directories"] == 2


def test_symlink_to_outside_file_is_skipped(folder, outside, caplog):
    target = make_file(outside / "secret.txt", OLD, content="keep me")
    make_dir(folder, OLD)
    link = folder / "link.txt"
    link.symlink_to(target)
    set_mtime(link, OLD, follow_symlinks=False)

    with caplog.at_level(logging.INFO, logger="maintenance.tempfiles"):
        outcome = clean(folder)

    assert link.is_symlink()
    assert target.read_text() == "keep me"
    assert outcome.counts["skipped"] == 1
    assert outcome.notes == ["skipped 1: symbolic link"]
    assert "temporary folder: skipped link.txt: symbolic link" in caplog.messages


def test_symlink_to_outside_directory_is_not_followed(folder, outside):
    target = make_file(outside / "records" / "old.db", OLD, content="keep me")
    make_dir(folder / "sub", OLD)
    (folder / "sub" / "escape").symlink_to(outside / "records", target_is_directory=True)
    (folder / "dotdot").symlink_to("..", target_is_directory=True)

    outcome = clean(folder)

    assert target.read_text() == "keep me"
    assert (folder / "sub" / "escape").is_symlink()
    assert (folder / "dotdot").is_symlink()
    assert outcome.counts["files"] == 0
    assert outcome.counts["skipped"] == 2


def test_file_swapped_for_symlink_is_skipped(folder, outside, monkeypatch, caplog):
    target = make_file(outside / "secret.txt", OLD, content="keep me")
    victim = make_file(folder / "victim.txt", OLD)
    original = tempfiles._Walk.remove_file

    def swap_then_remove(walk, directory_fd, name, path, listed):
        victim.unlink()
        victim.symlink_to(target)
        return original(walk, directory_fd, name, path, listed)

    monkeypatch.setattr(tempfiles._Walk, "remove_file", swap_then_remove)
    with caplog.at_level(logging.INFO, logger="maintenance.tempfiles"):
        outcome = clean(folder)

    assert victim.is_symlink()
    assert target.read_text() == "keep me"
    assert outcome.counts["files"] == 0
    assert outcome.notes == ["skipped 1: replaced by a symbolic link since it was listed"]
    assert "temporary folder: skipped victim.txt: replaced by a symbolic link since it was listed" in caplog.messages


def test_swap_after_final_check_removes_only_the_link(folder, outside, monkeypatch):
    target = make_file(outside / "secret.txt", OLD, content="keep me")
    victim = make_file(folder / "victim.txt", OLD)
    original = tempfiles._Walk.unlink

    def swap_then_unlink(walk, directory_fd, name):
        victim.unlink()
        victim.symlink_to(target)
        original(walk, directory_fd, name)

    monkeypatch.setattr(tempfiles._Walk, "unlink", swap_then_unlink)
    clean(folder)

    assert not victim.is_symlink()
    assert not victim.exists()
    assert target.read_text() == "keep me"


def test_directory_swapped_for_symlink_not_followed(folder, outside, monkeypatch):
    target = make_file(outside / "old.db", OLD, content="keep me")
    make_file(folder / "sub" / "old.txt", OLD)
    make_dir(folder / "sub", OLD)
    original = tempfiles._Walk.clean_subdirectory

    def swap_then_descend(walk, directory_fd, name, path, listed, depth):
        if name == "sub":
            (folder / "sub" / "old.txt").unlink()
            (folder / "sub").rmdir()
            (folder / "sub").symlink_to(outside, target_is_directory=True)
        return original(walk, directory_fd, name, path, listed, depth)

    monkeypatch.setattr(tempfiles._Walk, "clean_subdirectory", swap_then_descend)
    outcome = clean(folder)

    assert target.read_text() == "keep me"
    assert (folder / "sub").is_symlink()
    assert outcome.notes == ["skipped 1: replaced by a symbolic link or a file since it was listed"]


def test_fifo_is_skipped_without_blocking(folder):
    make_dir(folder, OLD)
    os.mkfifo(folder / "pipe")
    set_mtime(folder / "pipe", OLD)

    outcome = clean(folder)

    assert (folder / "pipe").exists()
    assert outcome.notes == ["skipped 1: not a regular file"]


def test_folder_that_is_a_symlink_is_rejected(tmp_path, outside):
    make_file(outside / "old.txt", OLD)
    (tmp_path / "tmp").symlink_to(outside, target_is_directory=True)

    with pytest.raises(TempFolderError, match="is a symbolic link or not a directory; set it to the real directory"):
        clean(tmp_path / "tmp")

    assert (outside / "old.txt").exists()


def test_missing_folder_is_reported_not_created(folder):
    outcome = clean(folder)

    assert outcome.counts == {}
    assert "does not exist; nothing to clean" in outcome.message
    assert not folder.exists()


def test_dry_run_removes_nothing_and_reports_all(folder):
    make_dir(folder, OLD)
    files = [make_file(folder / "d" / f"old-{n}.txt", OLD) for n in range(5)]
    make_dir(folder / "d", OLD)

    outcome = clean(folder, dry_run=True, max_removals=2)

    assert all(path.exists() for path in files)
    assert (folder / "d").is_dir()
    assert outcome.counts["files"] == 5
    assert outcome.counts["directories"] == 1
    assert outcome.more is False
    assert outcome.message.startswith("would remove 5 files and 1 directories")


def test_removal_bound_stops_and_next_run_finishes(folder):
    make_dir(folder, OLD)
    for n in range(5):
        make_file(folder / f"old-{n}.txt", OLD)

    first = clean(folder, max_removals=3)
    second = clean(folder, max_removals=3)

    assert first.counts["files"] == 3
    assert first.more is True
    assert second.counts["files"] == 2
    assert second.more is False
    assert list(folder.iterdir()) == []


def test_skipped_entries_never_trigger_more(folder, outside):
    make_dir(folder, OLD)
    for n in range(5):
        (folder / f"link-{n}").symlink_to(outside)

    outcome = clean(folder, max_removals=2)

    assert outcome.more is False
    assert outcome.counts["skipped"] == 5


def test_log_lines_capped_per_run(folder, caplog, monkeypatch):
    monkeypatch.setattr(tempfiles, "MAX_LOGGED_ENTRIES", 3)
    make_dir(folder, OLD)
    for n in range(6):
        make_file(folder / f"old-{n}.txt", OLD)

    with caplog.at_level(logging.INFO, logger="maintenance.tempfiles"):
        outcome = clean(folder)

    removed_lines = [line for line in caplog.messages if line.startswith("temporary folder: removed")]
    assert outcome.counts["files"] == 6
    assert len(removed_lines) == 3
    assert "more removed entries are not logged one by one this run" in caplog.messages
