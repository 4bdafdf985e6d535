"""Files written whole or not at all: a reader (or a crash) never sees half of one; a
photo's content as a key; a CSV header's missing columns in words."""
import hashlib
import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path

#: The longest file name, in bytes, of Linux's file systems (ext4, xfs, btrfs, tmpfs).
NAME_MAX = 255


class StagedFile:
    """A temporary file beside ``path`` (same folder), for writing ``path`` in steps:
    :meth:`publish` moves it over ``path`` in one step, :meth:`discard` removes it; until
    then ``path`` is as it was, however the writer ends.

    ``follow_link``: a link at ``path`` has the file it names replaced, for an output the user
    named (``--output``), where a link is theirs; elsewhere the link itself is replaced, so that
    a stale link in an output folder (an annotated copy's name) cannot lead a write outside it.
    """

    def __init__(self, path, *, follow_link=False):
        self.path = Path(os.path.realpath(path) if follow_link else path)
        handle, self.name = tempfile.mkstemp(dir=self.path.parent, prefix=f".{staged_stem(self.path.name)}.",
                                             suffix=".tmp")
        os.close(handle)

    def publish(self, *, durable=True):
        """Move the file over ``path``, with the mode of the file it replaces (one made private
        stays so), or a new file's; ``durable`` flushes it to disk first (a cache that can be
        rebuilt skips that)."""
        if durable:
            with open(self.name, "rb") as done:
                os.fsync(done.fileno())
        replace_keeping_mode(self.name, self.path)

    def discard(self):
        if os.path.exists(self.name):
            os.remove(self.name)


def replace_keeping_mode(source, target):
    """Move ``source`` over ``target`` in one step, with the permissions of the file it
    replaces (one made private stays so; not a set-user-ID bit, not for new content; not a
    link's), or a new file's (``mkstemp`` makes a staged file private)."""
    try:
        replaced = os.lstat(target)
        mode = stat.S_IMODE(replaced.st_mode) & 0o777 if stat.S_ISREG(replaced.st_mode) else None
    except OSError:
        mode = None
    if mode is None:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    os.chmod(source, mode)
    os.replace(source, target)


def fitting_name(stem, suffix):
    """``stem + suffix``, the stem cut by whole characters to keep the name within
    :data:`NAME_MAX` bytes (an output named after a photo, with a suffix of its own)."""
    while len(os.fsencode(stem + suffix)) > NAME_MAX:
        stem = stem[:-1]
    return stem + suffix


def staged_stem(name):
    """``name`` as the start of its staged file's name, cut to leave room for the 14 bytes
    around it (``.NAME.XXXXXXXX.tmp``) in a file name's :data:`NAME_MAX` bytes: a name that
    fits could not be written when it was over 241 bytes ("File name too long").  A character
    cut in two stays as its bytes (the name is never shown)."""
    return os.fsdecode(os.fsencode(name)[:NAME_MAX - len(".." + "x" * 8 + ".tmp")])


def write_atomically(path, write, *, durable=True):
    """Call ``write(temporary_path)``, then move it over ``path`` in one step (same folder).

    An error or interruption before the move leaves ``path`` as it was.  ``durable`` also
    flushes the file to disk before the move.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = StagedFile(path)
    try:
        write(staged.name)
        staged.publish(durable=durable)
    finally:
        staged.discard()


def write_json_atomically(path, data):
    """Write ``data`` as indented JSON with :func:`write_atomically`."""
    write_atomically(path, lambda p: Path(p).write_text(json.dumps(data, indent=2) + "\n"))


def writable_folder(path, flag):
    """``path``, made if need be, once a file could be created in it; else an OSError whose
    message names ``flag`` (the option that chose the folder) and the reason."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OSError(f"{flag} {path}: not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise OSError(f"{flag} {path}: cannot write into the folder ({exc.strerror or exc})") from None
    return path


#: The separators a spreadsheet exports "CSV" with where a comma is the decimal mark.
OTHER_SEPARATORS = {";": "semicolons", "\t": "tabs"}


def missing_columns(path, columns, required):
    """Why the CSV at ``path``, whose header gives ``columns``, lacks some of ``required``, in
    one line, or None.  A header split by semicolons or tabs (a spreadsheet's export in many
    languages) is said as such: it was "missing column(s)" of every column, each of them
    there."""
    missing = set(required) - set(columns)
    if not missing:
        return None
    return f"{path}: missing column(s) {', '.join(sorted(missing))}{other_separator(columns)}"


def other_separator(columns):
    """What a header read as ``columns`` says of its separator: where it is one column holding
    a semicolon or a tab, that the columns are separated by them (to be said after the error
    it caused); else nothing."""
    separator = next((s for s in OTHER_SEPARATORS if len(columns) == 1 and s in columns[0]), None)
    return f": its columns are separated by {OTHER_SEPARATORS[separator]}; save it with commas" if separator else ""


@contextmanager
def removed_if_left_empty(folder):
    """A block that may make ``folder``, and folders above it: on leaving, those it made and
    left empty are removed again (a run refused at once, for its ``--cache``, left an empty
    ``--out`` made for it)."""
    # "new/../out" makes new/ too: every folder on the way as written, each as it is named
    passed = {Path(os.path.abspath(path)) for path in (Path(folder).absolute(), *Path(folder).absolute().parents)}
    made = sorted((path for path in passed if not path.exists()), key=lambda path: len(path.parts), reverse=True)
    try:
        yield
    finally:
        for path in made:  # the deepest first
            try:
                path.rmdir()
            except OSError:  # filled, or gone: left as it is (and so is any folder above it)
                pass


def content_digest(path):
    """SHA-1 of a photo file's bytes (hex), the key of what is kept of it; None for what is not
    a regular file or cannot be read, which the loader names.  Read before the loader's own
    checks, a pipe named ``x.jpg`` in a training folder held the run for good, and a link to
    ``/dev/zero`` took the machine's memory."""
    try:
        if not Path(path).is_file():
            return None
        with open(path, "rb") as photo:  # in blocks: a 1 GB file took 1 GB of memory
            return hashlib.file_digest(photo, "sha1").hexdigest()
    except OSError:
        return None
