"""A request's photos on disk, in a private folder of their own, and the names they are shown by."""
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

from features.numbers import MB

BROWSER_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n"}
#: What an upload's name loses (Unicode categories): control and format characters, lone
#: surrogates, and line and paragraph separators (a line break to whoever reads the name).
#: Characters unassigned in this Python's Unicode stay: they are newer emoji, mostly.
UNSHOWN = ("Cc", "Cf", "Cs", "Zl", "Zp")
#: The start of a request's upload folder's name, then the server's pid (:func:`remove_stale_uploads`).
UPLOADS = "img2rec-web-"


def upload_folder():
    """A request's private folder for its photos (mode 0700), named for
    :func:`remove_stale_uploads`."""
    return Path(tempfile.mkdtemp(prefix=f"{UPLOADS}{os.getpid()}-"))


async def saved(upload, path):
    """``upload`` written to ``path``, a block at a time; ``path``."""
    with open(path, "wb") as out:
        while block := await upload.read(MB):
            out.write(block)
    return path


def remove_stale_uploads():
    """Remove the upload folders of this user's servers that no longer run: a server killed
    outright (SIGKILL, a crash) cannot remove its requests' photos, which stayed in the
    temporary folder, someone's photos on disk, for good."""
    for folder in Path(tempfile.gettempdir()).glob(UPLOADS + "*"):
        pid = folder.name[len(UPLOADS):].split("-")[0]
        try:
            if not pid.isdigit() or folder.stat().st_uid != os.getuid():
                continue
            os.kill(int(pid), 0)
        except ProcessLookupError:  # its server is gone
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # gone meanwhile, or a process of another user's (running): not ours to judge
            continue


def display_name(filename, number):
    """The uploaded file's own name without folders, control characters or line separators:
    shown, never opened.

    Browsers send ``"``, CR and LF in a file name as ``%22``, ``%0D`` and ``%0A`` (WHATWG's
    multipart/form-data); those three are undone, so ``say "hi".jpg`` is not shown as
    ``say %22hi%22.jpg`` (CR and LF then go with the other control characters).
    """
    name = filename or ""
    for escaped, character in BROWSER_ESCAPES.items():
        name = name.replace(escaped, character)
    name = unicodedata.normalize("NFC", name.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(c for c in name if unicodedata.category(c) not in UNSHOWN).strip()
    return name or f"photo-{number}"


def filename_text(raw):
    """An upload's file name as Starlette decodes it for the route (UTF-8, else Latin-1), so
    that a 413 names the photo as its record would (``caf\\xe9.jpg``: ``café.jpg``, not
    ``caf\ufffd.jpg``)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
