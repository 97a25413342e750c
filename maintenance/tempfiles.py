"""Removal of old files from the temporary folder, without ever leaving it.

The walk keeps an open descriptor for each directory and names every entry relative to
it (os.scandir on the descriptor; stat, unlink and rmdir with dir_fd), and it opens
subdirectories with O_NOFOLLOW. So a symbolic link is never followed, including one
swapped in for a file or directory during the walk, and no path is ever resolved
outside the folder. Only regular files and directories emptied by the run are removed:
symbolic links (to files or directories, inside or outside the folder), sockets, FIFOs
and devices are skipped and logged, never removed, and neither are their targets.
Subdirectories on another file system (mount points) are skipped too.

A file is removed when its modification time is before now - max age; a file exactly
at the cutoff stays.
"""

import errno
import logging
import os
import stat
import sys
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from maintenance.services import Outcome

logger = logging.getLogger(__name__)

DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Deeper directories are skipped because each level keeps a descriptor and a stack frame open.
MAX_DEPTH = 64
# Per-entry log lines of each kind (removed, skipped) per run; the rest are only counted.
MAX_LOGGED_ENTRIES = 100

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TempFolderError(Exception):
    """The configured temporary folder cannot be cleaned safely."""


def _ns_since_epoch(moment):
    return (moment - EPOCH) // timedelta(microseconds=1) * 1000


def _is_same_file(a, b):
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@dataclass
class _Walk:
    cutoff_ns: int
    max_removals: int
    dry_run: bool
    root_device: int = 0
    removed_files: int = 0
    removed_directories: int = 0
    kept_recent: int = 0
    skipped: Counter = field(default_factory=Counter)
    more: bool = False
    logged: Counter = field(default_factory=Counter)

    @property
    def removals(self):
        return self.removed_files + self.removed_directories

    def limit_reached(self):
        return self.removals >= self.max_removals

    def report(self, kind, level, message, *args):
        self.logged[kind] += 1
        if self.logged[kind] <= MAX_LOGGED_ENTRIES:
            logger.log(level, message, *args)
        elif self.logged[kind] == MAX_LOGGED_ENTRIES + 1:
            logger.log(level, "more %s entries are not logged one by one this run", kind)

    def skip(self, path, reason):
        self.skipped[reason] += 1
        self.report("skipped", logging.WARNING, "temporary folder: skipped %s: %s", path, reason)

    def clean_directory(self, directory_fd, path, depth):
        """Clean one directory; return whether every entry in it was removed."""
        with os.scandir(directory_fd) as entries:
            names = sorted(entry.name for entry in entries)
        left = 0
        for name in names:
            if self.limit_reached():
                self.more = True
                return False
            if not self.clean_entry(directory_fd, name, os.path.join(path, name), depth):
                left += 1
        return left == 0

    def clean_entry(self, directory_fd, name, path, depth):
        """Remove or descend into one entry; return whether it is gone (or would be)."""
        try:
            listed = os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
        except FileNotFoundError:
            return True
        if stat.S_ISLNK(listed.st_mode):
            self.skip(path, "symbolic link")
            return False
        if stat.S_ISDIR(listed.st_mode):
            return self.clean_subdirectory(directory_fd, name, path, listed, depth + 1)
        if not stat.S_ISREG(listed.st_mode):
            self.skip(path, "not a regular file")
            return False
        if listed.st_mtime_ns >= self.cutoff_ns:
            self.kept_recent += 1
            return False
        return self.remove_file(directory_fd, name, path, listed)

    def clean_subdirectory(self, directory_fd, name, path, listed, depth):
        if listed.st_dev != self.root_device:
            self.skip(path, "on another file system")
            return False
        if depth > MAX_DEPTH:
            self.skip(path, f"more than {MAX_DEPTH} levels deep")
            return False
        try:
            subdirectory_fd = os.open(name, DIRECTORY_FLAGS, dir_fd=directory_fd)
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                self.skip(path, "replaced by a symbolic link or a file since it was listed")
            else:
                self.skip(path, f"cannot open directory: {exc.strerror}")
            return False
        try:
            if not _is_same_file(os.fstat(subdirectory_fd), listed):
                self.skip(path, "replaced by another directory since it was listed")
                return False
            emptied = self.clean_directory(subdirectory_fd, path, depth)
        finally:
            os.close(subdirectory_fd)

        # The directory's own age is taken from before the run, whose removals touched it.
        if not emptied or listed.st_mtime_ns >= self.cutoff_ns or self.limit_reached():
            return False
        if not self.dry_run:
            try:
                os.rmdir(name, dir_fd=directory_fd)
            except OSError as exc:
                # ENOTEMPTY: a file was written into it since the walk listed it.
                logger.info("temporary folder: kept directory %s: %s", path, exc.strerror)
                return False
        self.removed_directories += 1
        self.report("removed", logging.INFO, "temporary folder: %s empty directory %s",
                    "would remove" if self.dry_run else "removed", path)
        return True

    def remove_file(self, directory_fd, name, path, listed):
        # Check again right before unlinking, so a file swapped for a link or another
        # file since it was listed is left alone.
        try:
            current = os.stat(name, dir_fd=directory_fd, follow_symlinks=False)
        except FileNotFoundError:
            return True
        if stat.S_ISLNK(current.st_mode):
            self.skip(path, "replaced by a symbolic link since it was listed")
            return False
        if not stat.S_ISREG(current.st_mode) or not _is_same_file(current, listed):
            self.skip(path, "replaced by another file since it was listed")
            return False
        if current.st_mtime_ns >= self.cutoff_ns:
            self.kept_recent += 1
            return False

        if not self.dry_run:
            try:
                self.unlink(directory_fd, name)
            except FileNotFoundError:
                return True
            except OSError as exc:
                self.skip(path, f"cannot remove: {exc.strerror}")
                return False
        self.removed_files += 1
        modified_at = datetime.fromtimestamp(current.st_mtime_ns / 1e9, UTC).isoformat(timespec="seconds")
        self.report("removed", logging.INFO, "temporary folder: %s %s (modified %s)",
                    "would remove" if self.dry_run else "removed", path, modified_at)
        return True

    def unlink(self, directory_fd, name):
        # NOTE: nothing can make this check-then-unlink atomic. A swap in the moment
        # after the check makes this remove the link or file that took the name, inside
        # this directory. unlink never follows a link, so no target is touched.
        os.unlink(name, dir_fd=directory_fd)


def temp_files_clean(*, folder=None, now=None, max_age=None, max_removals=None, dry_run=False):
    """Remove regular files older than max_age from `folder`, and directories they leave empty.

    Defaults come from settings: MAINTENANCE_TEMP_DIR, MAINTENANCE_TEMP_MAX_AGE_HOURS and
    MAINTENANCE_BATCH_SIZE * MAINTENANCE_BATCHES_PER_JOB removals per run (unbounded on a
    dry run); Outcome.more is True when the bound was reached. A missing folder is reported and nothing is done. Raise
    TempFolderError when the folder is a symbolic link or not a directory.
    """
    folder = os.fspath(folder or settings.MAINTENANCE_TEMP_DIR)
    now = now or timezone.now()
    max_age = max_age if max_age is not None else timedelta(hours=settings.MAINTENANCE_TEMP_MAX_AGE_HOURS)
    if dry_run:
        # A dry run reports everything that the run and its follow-ups would remove.
        max_removals = sys.maxsize
    elif max_removals is None:
        max_removals = settings.MAINTENANCE_BATCH_SIZE * settings.MAINTENANCE_BATCHES_PER_JOB
    walk = _Walk(cutoff_ns=_ns_since_epoch(now - max_age), max_removals=max_removals, dry_run=dry_run)

    try:
        root_fd = os.open(folder, DIRECTORY_FLAGS)
    except FileNotFoundError:
        logger.info("temporary folder %s does not exist; nothing to clean", folder)
        return Outcome({}, f"temporary folder {folder} does not exist; nothing to clean")
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise TempFolderError(
                f"MAINTENANCE_TEMP_DIR {folder!r} is a symbolic link or not a directory; "
                "set it to the real directory so the cleanup never follows a link."
            ) from None
        raise TempFolderError(f"Cannot open MAINTENANCE_TEMP_DIR {folder!r}: {exc.strerror}.") from None
    try:
        walk.root_device = os.fstat(root_fd).st_dev
        walk.clean_directory(root_fd, "", depth=0)
    finally:
        os.close(root_fd)

    counts = {
        "files": walk.removed_files,
        "directories": walk.removed_directories,
        "kept_recent": walk.kept_recent,
        "skipped": sum(walk.skipped.values()),
    }
    verb = "would remove" if dry_run else "removed"
    message = (
        f"{verb} {walk.removed_files} files and {walk.removed_directories} directories older than "
        f"{max_age} from {folder}; kept {walk.kept_recent} recent files; skipped {counts['skipped']}"
    )
    notes = [f"skipped {count}: {reason}" for reason, count in sorted(walk.skipped.items())]
    return Outcome(counts, message, more=walk.more, notes=notes)
