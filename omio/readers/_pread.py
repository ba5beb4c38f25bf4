"""Fill an array with a byte range of a file, read by several threads at once, and runs of planes stored so.

A whole-array read of uncompressed, contiguous pixels (a plain or OME-TIFF series,
a Thorlabs RAW file) is one copy from the page cache into fresh memory. Most of
that time is the kernel handing out and zeroing the new pages on first touch, which
runs on the core that touches them; splitting the range between threads spreads it
over every core (on a 2-core machine, a 1 GB read is about 2x faster and far less
variable than one ``readinto``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from omio._scheduler import cpu_count
from omio.errors import FileFormatError
from omio.readers._handles import file_identity

__all__ = ["OpenedFile", "PlaneReader", "PlaneRun", "fill_from_file"]

_MIN_PART = 32 << 20  # below this a thread costs more than it saves
_MAX_THREADS = 8


def fill_from_file(path: str, offset: int, out: np.ndarray[Any, Any], *, threads: int | None = None) -> None:
    """Fill ``out`` (C-contiguous) with ``out.nbytes`` bytes of ``path`` starting at ``offset``.

    The bytes are copied as stored: the caller swaps the byte order if the file's
    differs from the machine's.

    Parameters
    ----------
    path
        The file to read.
    offset
        Where the array's bytes start in the file.
    out
        The destination, C-contiguous; every byte of it is written.
    threads
        Threads reading parts of the range at once (default: the usable cores, at most 8).

    Raises
    ------
    FileFormatError
        The file ends before ``offset + out.nbytes`` (it is truncated).
    """
    if not out.flags.c_contiguous:
        raise ValueError("fill_from_file needs a C-contiguous array")
    target = memoryview(out.reshape(-1).view(np.uint8))
    size = len(target)
    if size == 0:
        return
    if threads is None:
        threads = min(cpu_count(), _MAX_THREADS)
    parts = max(1, min(threads, size // _MIN_PART))
    step = (-(-size // parts) + 4095) & ~4095  # parts of whole pages
    bounds = [(start, min(start + step, size)) for start in range(0, size, step)]

    def read(part: tuple[int, int]) -> None:
        start, stop = part
        with open(path, "rb", buffering=0) as fh:  # a handle per thread: each reads its own part
            fh.seek(offset + start)
            done = start
            while done < stop:
                n = fh.readinto(target[done:stop])
                if not n:
                    raise FileFormatError(
                        f"{path}: the file ends before the image data does (needs {offset + size} bytes, "
                        f"has {os.fstat(fh.fileno()).st_size}); it is truncated, copy it again from its source"
                    )
                done += n

    if len(bounds) == 1:
        read(bounds[0])
    else:
        with ThreadPoolExecutor(len(bounds), thread_name_prefix="omio-pread") as pool:
            for future in [pool.submit(read, part) for part in bounds]:
                future.result()


class PlaneReader(Protocol):
    """A reader's own read of runs of consecutive TZCYX planes (T, Z, C order) of the image it opened.

    Made on opening, for the file as it was then: :meth:`unchanged` tells whether it still is.
    """

    @property
    def path(self) -> str:
        """The file read."""
        ...

    def unchanged(self) -> bool:
        """True while the file is the one opened (same size and modification time)."""
        ...

    def read(self, out: np.ndarray[Any, Any], first: int = 0) -> None:
        """Fill ``out`` (C-contiguous, ending in Y, X) with consecutive planes from plane ``first``."""
        ...


@dataclass(frozen=True)
class OpenedFile:
    """A file as it was when a reader opened it.

    Attributes
    ----------
    path
        The file.
    identity
        Its size and modification time then (:func:`~omio.readers._handles.file_identity`).
    """

    path: str
    identity: tuple[int, int]

    def unchanged(self) -> bool:
        """True while the file is the one opened (same size and modification time)."""
        return file_identity(self.path) == self.identity


@dataclass(frozen=True)
class PlaneRun(OpenedFile):
    """An image's TZCYX planes stored uncompressed, one after another in T, Z, C order, in one file.

    Found by a reader on opening (a contiguous TIFF series, a Thorlabs RAW file without
    flyback frames); any run of consecutive planes is then one byte range, read with
    :func:`fill_from_file` and no task per plane.

    Attributes
    ----------
    offset
        Where the first plane's bytes start.
    swap
        The file's byte order is not the machine's.
    """

    offset: int
    swap: bool

    def read(self, out: np.ndarray[Any, Any], first: int = 0) -> None:
        """Fill ``out`` (C-contiguous, ending in Y, X) with consecutive planes from plane ``first`` (T, Z, C order).

        Raises
        ------
        FileFormatError
            The file ends before the planes do.
        """
        plane_bytes = out.shape[-1] * out.shape[-2] * out.itemsize
        fill_from_file(self.path, self.offset + first * plane_bytes, out)
        if self.swap:
            out.byteswap(inplace=True)
