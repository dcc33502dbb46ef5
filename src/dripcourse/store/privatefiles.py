"""Files and folders only their owner may read: the database, backups, written mail, previews.

They hold personal data and, in the database, the secret key that signs unsubscribe links, so they
are 0600 (folders 0700) whatever the umask. The mode is given to `os.open`/`os.mkdir` so the file
is never readable by others for a moment, then set again with `fchmod`/`chmod`: the umask can
only take bits away, and a umask such as 0o277 would otherwise leave the owner unable to write.
Every place that writes such a file goes through here.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import BinaryIO

FILE_MODE = 0o600
FOLDER_MODE = 0o700
_OTHERS = stat.S_IRWXG | stat.S_IRWXO

log = logging.getLogger(__name__)


def open_private(path: str | os.PathLike[str]) -> BinaryIO:
    """Open `path` for writing (created, or emptied if it exists), readable by its owner only."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, FILE_MODE)
    try:
        # An existing file keeps its old mode through O_CREAT: set it here, before any byte.
        os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "wb")


def write_private(path: str | os.PathLike[str], data: bytes) -> None:
    with open_private(path) as file:
        file.write(data)


def create_private(path: str | os.PathLike[str]) -> None:
    """Make sure the file `path` exists and is private: created empty and 0600 if missing, else
    tightened. An existing file is never emptied (it may be a live database)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE)
    except FileExistsError:
        tighten(path)
        return
    try:
        os.fchmod(fd, FILE_MODE)
    finally:
        os.close(fd)


def make_private_dir(path: str | os.PathLike[str]) -> None:
    """Create the folder `path` and any missing parents 0700 (unlike `mkdir -p`, whose parents
    follow the umask); a folder that exists already is left as it is."""
    folder = Path(path)
    missing: list[Path] = []
    while not folder.is_dir():
        missing.append(folder)
        if folder.parent == folder:
            break
        folder = folder.parent
    for created in reversed(missing):
        try:
            created.mkdir(FOLDER_MODE)
        except FileExistsError:
            if not created.is_dir():
                raise
            continue  # made by someone else in the meantime: theirs, so left alone
        os.chmod(created, FOLDER_MODE)


def tighten(path: str | os.PathLike[str]) -> None:
    """Take group's and others' permissions away from `path`, if it exists; the owner's stay as
    they are (0644 becomes 0600, 0400 stays 0400). A file of another user (a database shared
    through its group) cannot be changed by us: that is a warning in the log, not an error."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return
    if not mode & _OTHERS:
        return
    try:
        os.chmod(path, mode & ~_OTHERS)
    except PermissionError:
        log.warning("%s is mode %o and not ours to make private (chmod 600 it)", path, mode)
