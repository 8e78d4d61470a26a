"""Writing files so that a crash never leaves half of one: checkpoints, downloads, pictures.

:func:`atomic_write` writes under a temporary name in the same folder
(``.NAME.<pid>.<random>.tmp``), flushes the bytes to disk, then renames the file over the
old one (``os.replace``), so a crash, Ctrl-C or ``kill -9`` leaves either the old file or
the new one, never half of one. A temporary file left by a process that was killed is
removed by the next write or read of the same name (:func:`remove_stale_temporaries`).

    atomic_write("run/metrics.jsonl", lambda f: f.write(text), mode="w")
"""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from pathlib import Path

from tinyvae.errors import UserError

UMASK = os.umask(0o022)  # read the process's umask (the only way is to set it) ...
os.umask(UMASK)  # ... and put it back


def atomic_write(path, write, mode="wb") -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, rename it to ``path``.

    ``path`` must be a regular file or not exist yet. Renaming over a folder, a device such
    as /dev/full or a pipe would replace it; writing through a symbolic link would change
    the file it points to, which may belong to another run: all are refused.

    An OSError while writing (a full disk, a folder we may not write in) becomes a one-line
    UserError; any other exception that ``write`` raises (it may refuse what it wrote, as a
    download with the wrong checksum does) removes the temporary file and goes on up."""
    path = Path(path)
    refuse_link(path)
    if path.exists() and not path.is_file():  # never rename over a folder, device or pipe
        kind = "a folder" if path.is_dir() else "not a regular file"
        raise UserError(f"cannot write {path}: it is {kind}; choose another name")
    remove_stale_temporaries(path)
    try:
        prefix = f".{path.name}.{os.getpid()}."  # the pid says whose it is: see below
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    except OSError as error:
        raise UserError(
            f"cannot write in {path.parent} ({error.strerror or error}): choose a folder "
            "you can write to"
        ) from None
    try:
        with os.fdopen(fd, mode) as f:
            os.fchmod(f.fileno(), 0o666 & ~UMASK)  # mkstemp's file is private: usual mode
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
    except BaseException as error:  # includes KeyboardInterrupt: never leave the temp file
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise UserError(
                f"cannot write {path} ({error.strerror or error}): check that the disk has "
                "space and the folder is writable"
            ) from None
        raise


def refuse_link(path) -> None:
    """A UserError when ``path`` is a symbolic link: a tool never writes into the file a link
    points to (it may be another run's checkpoint), nor replaces the link with a file."""
    path = Path(path)
    if path.is_symlink():
        target = os.readlink(path)
        raise UserError(
            f"will not write {path}: it is a symbolic link to {target}, and writing through it "
            "would change that file; remove the link (or replace it with a copy of the file) "
            "and run again"
        )


def remove_stale_temporaries(path) -> None:
    """Delete the temporary files of ``path`` that processes no longer running left behind.

    A process killed while writing (``kill -9``, a power cut) cannot clean up after itself.
    Its temporary file carries its process id, so a file whose process is gone is stale;
    one whose process still runs belongs to a write in progress and is left alone.
    """
    path = Path(path)
    with contextlib.suppress(OSError):  # a folder we may not list or write: nothing to do
        for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            pid = tmp.name[len(path.name) + 2 :].split(".")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _running(int(pid)):
                with contextlib.suppress(OSError):
                    tmp.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:  # it exists but belongs to someone else
        return True
    return True
