"""Files written by long jobs and images: one home for atomic writes, PNGs and uint8 quantisation.

Every file a job writes goes to a temporary name beside its destination, then ``os.replace``
moves it into place, so a killed process never leaves a half-written file under the real name.
Temporary names hold :data:`TEMP_MARKER`, so a folder's leftovers can be recognised and removed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import List, Tuple, Union

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from mobiler2l_ns.utils.errors import InputError

TEMP_MARKER = ".tmp-"
"""Part of every temporary file name :func:`write_atomic` uses (``.NAME.tmp-PID``)."""


def temp_path(path: Path) -> Path:
    """The temporary name :func:`write_atomic` writes ``path`` under (hidden, in the same folder)."""
    return path.with_name(f".{path.name}{TEMP_MARKER}{os.getpid()}")


def write_atomic(path: Union[str, Path], data: bytes, durable: bool = False, what: str = "") -> None:
    """Write ``data`` to ``path`` through a temporary file beside it and a rename.

    ``durable``: fsync the file and its folder (the write survives a power cut, not only a kill).
    ``what``: name of the thing written (e.g. ``"pseudo cache /x"``): an OSError (disk full,
    file-size limit, read-only folder) then becomes a one-line :class:`InputError` naming it; the
    temporary file is removed whatever fails.
    """
    path = Path(path)
    tmp = temp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if what and isinstance(err, OSError):
            raise InputError(f"{what}: cannot write {path.name} ({err.strerror or err})") from None
        raise
    if durable:
        with contextlib.suppress(OSError):  # platforms without directory fsync
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def write_text_atomic(path: Union[str, Path], text: str, what: str = "") -> None:
    """:func:`write_atomic` of UTF-8 text."""
    write_atomic(path, text.encode("utf-8"), what=what)


def write_json_atomic(path: Union[str, Path], value: object, what: str = "") -> None:
    """:func:`write_atomic` of ``value`` as indented JSON with a final newline."""
    write_text_atomic(path, json.dumps(value, indent=2) + "\n", what=what)


def to_uint8(image: NDArray) -> NDArray[np.uint8]:
    """``[H, W, C]`` float in [0, 1] -> uint8, rounded to nearest (values outside [0, 1] clipped)."""
    return np.round(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)


def encode_png(image: NDArray[np.uint8], optimize: bool = False) -> bytes:
    """PNG bytes of a uint8 ``[H, W]``, ``[H, W, 3]`` (RGB) or ``[H, W, 4]`` (RGBA) image."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="PNG", optimize=optimize)
    return buffer.getvalue()


def write_png(path: Union[str, Path], image: NDArray, optimize: bool = False, what: str = "") -> None:
    """Atomically write an image as PNG; float images in [0, 1] are quantised with :func:`to_uint8`."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = to_uint8(image)
    write_atomic(path, encode_png(image, optimize), what=what)


def read_rgb(path: Union[str, Path]) -> NDArray[np.float32]:
    """An image file as float32 ``[H, W, 3]`` in [0, 1] (alpha dropped)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


class StagingDir:
    """A temporary folder next to ``output_dir``; :meth:`commit` moves its files into place.

    Created at construction, so an unwritable destination fails before any work (InputError
    naming ``flag``). ``commit`` renames the whole folder when ``output_dir`` does not exist yet
    (atomic), else moves file by file, backing up the files it replaces and restoring them if a
    move fails. ``abort`` removes the staging folder and any parent folders this object created.
    """

    def __init__(self, output_dir: Path, flag: str = "--output-dir"):
        self.output_dir = Path(os.path.abspath(output_dir))
        self.flag = flag
        self.created: List[Path] = []
        out = self.output_dir
        if out.exists() and not out.is_dir():
            raise InputError(f"{flag} {output_dir}: exists and is not a directory")
        if out.exists() and not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"{flag} {output_dir}: directory is not writable")
        try:
            self._make_parents(out.parent)
            base = out.parent if os.access(out.parent, os.W_OK | os.X_OK) or not out.exists() else out
            self.path = Path(tempfile.mkdtemp(prefix=f".{out.name}{TEMP_MARKER}", dir=base))
        except OSError as err:
            self._remove_created()
            raise InputError(f"{flag} {output_dir}: cannot write there ({err.strerror or err})") from None

    def _make_parents(self, directory: Path) -> None:
        missing = []
        for parent in [directory, *directory.parents]:
            if parent.exists():
                break
            missing.append(parent)
        for parent in reversed(missing):
            parent.mkdir()
            self.created.append(parent)

    def _remove_created(self) -> None:
        for directory in reversed(self.created):
            with contextlib.suppress(OSError):
                directory.rmdir()
        self.created = []

    def commit(self) -> List[Path]:
        """Move the staged files into ``output_dir``; returns their final paths (sorted)."""
        names = sorted(p.name for p in self.path.iterdir())
        out = self.output_dir
        if not out.exists():
            try:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self.path, 0o777 & ~umask)  # mkdtemp's 0700 would make the folder private
                os.rename(self.path, out)
                return [out / n for n in names]
            except OSError:
                if not out.is_dir():
                    raise
        backups: List[Tuple[Path, Path]] = []
        moved: List[Path] = []
        try:
            for name in names:
                target = out / name
                if target.exists():
                    backup = self.path / f"{name}.previous"
                    os.replace(target, backup)
                    backups.append((backup, target))
                os.replace(self.path / name, target)
                moved.append(target)
        except OSError as err:
            for path in moved:
                path.unlink(missing_ok=True)
            for backup, target in backups:
                os.replace(backup, target)
            raise InputError(f"{self.flag} {out}: cannot write there ({err.strerror or err})") from None
        shutil.rmtree(self.path, ignore_errors=True)
        return [out / n for n in names]

    def abort(self) -> None:
        """Remove everything this object created."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._remove_created()
