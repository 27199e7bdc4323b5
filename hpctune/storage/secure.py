"""Who may read and write an experiment: private by default, group read-only on request.

Every directory and file hpctune creates in an experiment gets an explicit mode, whatever
the process umask (which stays the user's own, for their trainable's files):

* private (default): directories 0700, files 0600;
* shared with the group (``HPCTUNE_SHARE_WITH_GROUP=1`` when the experiment is created):
  directories 0750, files 0640. Never group- or world-writable.

Only the experiment root is created from the policy; everything below it takes the mode
of the directory it is created in, so a worker on a compute node follows the root's
choice without being told. Pickles run code when loaded: ``load_private_pickle`` loads
only a regular file that you own, that nobody else can write, in a directory nobody
else can write, checked on the open descriptor (no symlink followed).
"""

from __future__ import annotations

import errno
import os
import pickle
import stat
from pathlib import Path
from typing import Any, NoReturn

from hpctune.errors import ConfigError, StorageError, UnsafeFileError

SHARE_ENV = "HPCTUNE_SHARE_WITH_GROUP"
PRIVATE_DIR_MODE, PRIVATE_FILE_MODE = 0o700, 0o600
SHARED_DIR_MODE, SHARED_FILE_MODE = 0o750, 0o640
_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


# -- the mode policy -----------------------------------------------------------------------------
def share_with_group_default() -> bool:
    """True when ``HPCTUNE_SHARE_WITH_GROUP`` asks for new experiments readable by the group."""
    return os.environ.get(SHARE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def root_dir_mode(share_with_group: bool | None = None) -> int:
    """The mode of a new experiment root: 0700, or 0750 when shared (None: the environment)."""
    if share_with_group is None:
        share_with_group = share_with_group_default()
    return SHARED_DIR_MODE if share_with_group else PRIVATE_DIR_MODE


def _group_reads(directory: Path) -> bool:
    try:
        return bool(os.stat(directory).st_mode & stat.S_IRGRP)
    except FileNotFoundError:
        return share_with_group_default()


def dir_mode_for(parent: str | Path) -> int:
    """Mode of a directory created in ``parent``: 0750 if the group may read ``parent``, else 0700."""
    return SHARED_DIR_MODE if _group_reads(Path(parent)) else PRIVATE_DIR_MODE


def file_mode_for(parent: str | Path) -> int:
    """Mode of a file created in ``parent``: 0640 if the group may read ``parent``, else 0600."""
    return SHARED_FILE_MODE if _group_reads(Path(parent)) else PRIVATE_FILE_MODE


# -- creating ----------------------------------------------------------------------------------------
def make_private_dir(path: str | Path, mode: int | None = None) -> Path:
    """Create ``path`` and missing parents with exactly ``mode`` (default: from its parent).

    An existing directory is left as it is; ``ensure_dir`` also sets its mode.
    """
    path = Path(path)
    if path.is_dir():
        return path
    if not path.parent.is_dir():
        make_private_dir(path.parent, mode)
    wanted = dir_mode_for(path.parent) if mode is None else mode
    try:
        os.mkdir(path, wanted)
    except FileExistsError:
        if path.is_dir():  # created meanwhile by another process
            return path
        raise StorageError(f"Cannot create the directory {path}: something that is not a directory "
                           "is there. Fix: move it away, or choose another storage path or name.") from None
    except OSError as exc:
        _raise_name_too_long(path, exc)
    _set_dir_mode(path, wanted)
    return path


def _raise_name_too_long(path: Path, exc: OSError) -> NoReturn:
    """A ConfigError for a name longer than the filesystem takes; ``exc`` again otherwise."""
    if exc.errno != errno.ENAMETOOLONG:
        raise exc
    raise ConfigError(f"Cannot create the directory {path}: its name ({path.name[:40]}...) is "
                      f"{len(path.name.encode())} bytes, more than the filesystem takes (255 at most "
                      "on most). Fix: choose a shorter RunConfig(name=...) or --name.") from None


class NewDirs:
    """Makes directories in ``parent`` (the driver's trial directories: one per new trial,
    thousands a run) with exactly ``mode`` (default: the policy's for ``parent``), at one
    ``mkdir`` apiece instead of ``make_private_dir``'s stats, open and fstat.

    ``mkdir`` never follows a symlink and what it creates is yours: what is left to check is
    the mode, which the umask, a set-group-ID parent or a default ACL may change. The first
    directory is checked on its descriptor (``_set_dir_mode``), and so is each next one until
    ``mkdir`` alone gave exactly ``mode``; from then on it is trusted (a umask or ACL changed
    later in the run can only take bits away, never give anyone more access)."""

    def __init__(self, parent: str | Path, mode: int | None = None):
        self.parent = Path(parent)
        self.mode = dir_mode_for(self.parent) if mode is None else mode
        self._trusted = False

    def make(self, name: str) -> bool:
        """Create ``parent/name``: True when this call created it, False when a directory was
        there already (left as it is, as ``make_private_dir`` leaves it); StorageError when
        something that is not a directory is there."""
        path = self.parent / check_component(name, "directory name")
        try:
            os.mkdir(path, self.mode)
        except FileExistsError:
            make_private_dir(path, self.mode)
            return False
        except FileNotFoundError:  # no parent (yet, or no more): made as make_private_dir makes it
            make_private_dir(path, self.mode)
            return True
        except OSError as exc:
            _raise_name_too_long(path, exc)
        if not self._trusted:
            self._trusted = _set_dir_mode(path, self.mode)
        return True


def ensure_dir(path: str | Path, mode: int) -> Path:
    """``path`` as a directory of yours with exactly ``mode``: created, or re-moded if it exists."""
    path = Path(path)
    if not path.is_dir():
        return make_private_dir(path, mode)
    _set_dir_mode(path, mode)
    return path


def _set_dir_mode(path: Path, mode: int) -> bool:
    """Give the directory of yours ``path`` exactly ``mode``; True when it had it already."""
    fd = _open_nofollow(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid():
            raise UnsafeFileError(
                f"The experiment directory {path} belongs to uid {st.st_uid}, not to you "
                f"(uid {os.geteuid()}): its owner could change your experiment. Fix: choose "
                "another RunConfig(name=...) or storage_path.")
        if stat.S_IMODE(st.st_mode) == mode:
            return True
        os.fchmod(fd, mode)
        return False
    finally:
        os.close(fd)


def open_private(path: str | Path, flags: int, mode: int | None = None) -> int:
    """``os.open`` that never follows a symlink at ``path``; a file it creates (``O_CREAT``)
    gets exactly the mode of its directory's policy (0600 or 0640; ``mode``: that policy,
    already known), whatever the umask."""
    path = Path(path)
    if not flags & os.O_CREAT:
        return _open_nofollow(path, flags)
    if mode is None:
        mode = file_mode_for(path.parent)
    while True:
        try:
            return create_private(path, flags, mode)
        except FileExistsError:
            try:
                return _open_nofollow(path, flags & ~os.O_CREAT)
            except FileNotFoundError:
                continue  # removed between the two opens: create it after all


def create_private(path: str | Path, flags: int, mode: int) -> int:
    """Create the file ``path`` (``O_EXCL``: FileExistsError when anything is there, a link
    too) with exactly ``mode``, whatever the umask; its descriptor, opened with ``flags``."""
    fd = _open_nofollow(Path(path), flags | os.O_CREAT | os.O_EXCL, mode)
    os.fchmod(fd, mode)
    return fd


def _open_nofollow(path: Path, flags: int, mode: int = 0o600) -> int:
    try:
        return os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        # ELOOP; ENOTDIR when O_DIRECTORY meets the link first
        if exc.errno == errno.ELOOP or exc.errno == errno.ENOTDIR and path.is_symlink():
            raise UnsafeFileError(
                f"{path} is a symbolic link where hpctune expects its own file or directory: "
                "someone may be redirecting hpctune's writes. Fix: remove the link "
                f"(`rm {path}`) and check who can write to {path.parent}.") from exc
        raise


def copy_tree_private(source: str | Path, target: str | Path, fsync: bool = True) -> None:
    """Copy the files of ``source`` into the existing directory ``target``; directories and
    files get ``target``'s policy modes (the source's own modes are not kept).

    A symbolic link inside ``source`` is copied as what it points to only when that lies
    inside ``source`` too; a link out of it (``~/.ssh/id_rsa``) is an UnsafeFileError: a
    checkpoint copy must never carry files from elsewhere into the experiment."""
    source, target = Path(source), Path(target)
    inside = source.resolve()
    for dirpath, dirnames, filenames in os.walk(source, followlinks=True):
        here = target / Path(dirpath).relative_to(source)
        for name in dirnames + filenames:
            _refuse_link_out(Path(dirpath) / name, inside)
        for name in dirnames:
            make_private_dir(here / name)
        for name in filenames:
            fd = open_private(here / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            with open(fd, "wb") as out, open(os.path.join(dirpath, name), "rb") as src:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
                if fsync:
                    out.flush()
                    os.fsync(out.fileno())


def _refuse_link_out(path: Path, inside: Path) -> None:
    if not path.is_symlink():
        return
    target = path.resolve()
    here = path.parent.resolve()
    if target.is_dir() and (target == here or target in here.parents):
        raise UnsafeFileError(f"The checkpoint holds {path}, a symbolic link to its own parent "
                              f"{target}: copying it would never end. Fix: remove the link.")
    if target != inside and inside not in target.parents:
        raise UnsafeFileError(
            f"The checkpoint holds {path}, a symbolic link to {target}, outside the checkpoint "
            f"directory {inside}: hpctune copies a checkpoint's own files only. Fix: save a copy "
            "of the file in the checkpoint directory instead of a link.")


# -- reading files that others may have planted ---------------------------------------------------
#: the largest JSON record hpctune reads (state.json of a very large experiment is far smaller)
MAX_RECORD_BYTES = 128 * 1024 * 1024


def read_regular_bytes(path: str | Path, max_bytes: int = MAX_RECORD_BYTES) -> bytes:
    """The contents of ``path`` if it is a regular file (not a link, FIFO or device) of at most
    ``max_bytes``; FileNotFoundError if it does not exist, UnsafeFileError otherwise. A FIFO
    planted as ``summary.json`` must not hang a reader, nor a link to /dev/zero fill memory."""
    path = Path(path)
    fd = _open_nofollow(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(fd, "rb") as f:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"Refusing to read {path}: it is not a regular file. Fix: remove "
                                  "it; hpctune writes its files as regular files.")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise UnsafeFileError(f"Refusing to read {path}: it is larger than {max_bytes} bytes, far "
                              "more than hpctune writes there. Fix: move it away.")
    return data


# -- names that become paths ----------------------------------------------------------------------
def check_component(name: object, what: str) -> str:
    """``name`` if it is one path component (a trial id, a checkpoint name read from a file):
    not empty, not ``.``/``..``, without ``/``, NUL or control characters, at most 255 bytes.
    A crafted name such as ``../../x`` must never reach a path that is written or removed."""
    ok = (isinstance(name, str) and name not in ("", ".", "..") and len(name.encode()) <= 255
          and not any(ch == "/" or ord(ch) < 32 or ord(ch) == 127 for ch in name))
    if not ok:
        raise UnsafeFileError(
            f"{name!r} is not a valid {what}: it must be a single file name (no '/', no control "
            "characters, not '.' or '..'). An edited or forged experiment file holds it: hpctune "
            "will not use it as a path. Fix: restore the file, or move the experiment away.")
    return name


def child_path(parent: str | Path, name: object, what: str) -> Path:
    """``parent / name`` once ``name`` is checked to be a single component (``check_component``)."""
    return Path(parent) / check_component(name, what)


# -- loading pickles -----------------------------------------------------------------------------------
def load_private_pickle(path: str | Path) -> Any:
    """Unpickle ``path`` only if you own it and nobody else can write it or its directory.

    A pickle runs code when it is loaded: a file that someone else could have written
    would run their code as you. Raises ``UnsafeFileError`` naming the problem and the fix.
    """
    return pickle.loads(read_private_bytes(path))


def read_private_bytes(path: str | Path) -> bytes:
    """The contents of ``path`` after the checks of ``load_private_pickle`` (on the open fd)."""
    path = Path(path)
    fd = _open_nofollow(path, os.O_RDONLY | os.O_NONBLOCK)  # a planted FIFO must not block
    with open(fd, "rb") as f:
        check_private_file(path, os.fstat(fd))
        check_private_dir(path.parent)
        return f.read()


def check_private_file(path: Path, st: os.stat_result) -> None:
    """Refuse a file that is not a regular file of yours, or that group/others may write."""
    me = os.geteuid()
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(f"Refusing to load {path}: it is not a regular file. Fix: re-create it.")
    if st.st_uid != me:
        raise UnsafeFileError(
            f"Refusing to load {path}: it is owned by uid {st.st_uid}, not by you (uid {me}), and "
            "loading a pickle runs code. Fix: if it is yours, copy it to a file you own "
            f"(`cp {path} {path}.mine && mv {path}.mine {path}`); otherwise re-create it "
            "(run the experiment again).")
    if st.st_mode & _OTHERS_WRITE:
        raise UnsafeFileError(
            f"Refusing to load {path}: its mode {stat.S_IMODE(st.st_mode):04o} lets "
            f"{_who(st.st_mode)} write it, so someone else could have replaced it, and loading a "
            f"pickle runs code. Fix: `chmod go-w {path}` if you trust its contents, or re-create it.")


def check_private_dir(directory: Path) -> None:
    """Refuse a directory that others may write (they could swap the file); a sticky one is fine."""
    st = os.stat(directory)
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        raise UnsafeFileError(
            f"Refusing to load files from {directory}: it is owned by uid {st.st_uid}, not by you "
            f"(uid {me}), who could swap them. Fix: keep experiments in a directory of your own.")
    if st.st_mode & _OTHERS_WRITE and not st.st_mode & stat.S_ISVTX:
        raise UnsafeFileError(
            f"Refusing to load files from {directory}: its mode {stat.S_IMODE(st.st_mode):04o} lets "
            f"{_who(st.st_mode)} replace them, and loading a pickle runs code. "
            f"Fix: `chmod go-w {directory}`.")


def _who(mode: int) -> str:
    both = mode & stat.S_IWGRP and mode & stat.S_IWOTH
    return "the group and others" if both else "the group" if mode & stat.S_IWGRP else "others"
