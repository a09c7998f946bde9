"""The translated files of /translate_file, kept for /download_file/{name} until they expire.

Files live in a temporary directory made when the server starts and removed when it stops. A name
is a random UUID, then the uploaded file's own name made safe, so it cannot be guessed; a name is
looked up in the store's own index, never joined to a path as sent, so no name reaches outside the
directory. Expired files (after `ttl` seconds, 30 minutes as LibreTranslate keeps them) are removed
whenever a file is stored or fetched, and at most `max_files` are kept (the oldest go first). The
clock is a parameter, for the tests. No web framework.
"""

from __future__ import annotations

import collections
import contextlib
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TTL_S = 30 * 60.0
MAX_FILES = 1000
# What may stay of an uploaded name: letters, digits, dot, dash, underscore (anything else becomes "_").
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Stored:
    path: Path
    filename: str  # what the download is called: the uploaded name, made safe
    expires: float  # on the store's clock


class FileStore:
    def __init__(self, ttl: float = TTL_S, *, max_files: int = MAX_FILES, clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_files = max_files
        self.clock = clock
        self.directory: Path | None = None
        self._files: collections.OrderedDict[str, Stored] = collections.OrderedDict()  # oldest first

    def open(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="seq2seq-serve-files-"))

    def close(self) -> None:
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
        self.directory = None
        self._files.clear()

    def __len__(self) -> int:
        return len(self._files)

    def put(self, data: bytes, filename: str) -> str:
        """Store data; the name to fetch it by."""
        if self.directory is None:
            raise RuntimeError("the file store is not open (FileStore.open at the server's start)")
        self._expire()
        while len(self._files) >= self.max_files:
            self._remove(next(iter(self._files)))
        safe = safe_filename(filename)
        name = f"{uuid.uuid4().hex}.{safe}"
        path = self.directory / name
        path.write_bytes(data)
        self._files[name] = Stored(path, safe, self.clock() + self.ttl)
        return name

    def get(self, name: str) -> Stored | None:
        """The stored file of that name, or None when there is none (never stored, expired, removed)."""
        self._expire()
        return self._files.get(name)

    def _expire(self) -> None:
        now = self.clock()
        while self._files:
            name, stored = next(iter(self._files.items()))
            if stored.expires > now:
                return
            self._remove(name)

    def _remove(self, name: str) -> None:
        stored = self._files.pop(name)
        with contextlib.suppress(FileNotFoundError):
            os.remove(stored.path)


def safe_filename(filename: str) -> str:
    """The last path component of an uploaded name with only safe characters ("file.txt" when nothing is left)."""
    base = re.split(r"[/\\]", filename)[-1]
    safe = _UNSAFE.sub("_", base).strip("._")[:100]
    return safe or "file.txt"
