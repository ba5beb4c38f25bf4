"""Streaming OME-TIFF writer.

Pixels are pulled one slab of whole planes at a time (the next slab is read while the
current one is compressed). While the dataset's pixels are still the file's, the
reader's own plane reads fill each slab (:class:`~omio.readers._pread.PlaneReader`: one
byte range where a TIFF series or a Thorlabs RAW file stores its planes uncompressed one
after another, tifffile decoding a TIFF series' pages otherwise); other pixels come from
dask (an array of one-plane chunks, as TIFF pages give, has its graph optimized once and
each slab's tasks picked from it). Compressed output is cut into segments
(strips or tiles) that ``maxworkers`` threads encode with tifffile's own codec for
the compression tag, keeping a bounded window of segments in flight so that no core
waits at a batch boundary; tifffile is handed the encoded bytes in file order.
Peak memory is a few slabs whatever the image size. The OME-XML comes from
ome-types and goes, UTF-8, into the first page's ImageDescription; it is made in a
thread while the first segments are read and encoded (up to ``_HEAD_BYTES`` of them
are held meanwhile), so that its second or so of one-core work does not leave the
other cores idle. The file appears at its final path only when complete.

Resolution pyramids are stored as SubIFDs of every full-resolution page (the layout
Bio-Formats, QuPath, tifffile and napari read): the levels of a slab are averaged
(:func:`omio.pyramid.pyramid`) from the slab just read, and each slab is written as
its full-resolution pages followed by their reduced pages, so the file is read once
and memory stays bounded. One stream of encoded segments runs through all these
writes, each taking its share, so encoding does not stop between them. The OME-XML
describes level 0 only, as the format requires.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import uuid
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import dask.array as da
import dask.local
import numpy as np

from omio import pyramid as pyramids
from omio import units
from omio._block_tasks import block_tasks
from omio._pixel_types import ome_name
from omio._scheduler import cpu_count, scheduler
from omio.errors import DimensionError, FileFormatError, MetadataError
from omio.writers._output import atomic_output

if TYPE_CHECKING:
    from ome_types import OME

    from omio.dataset import MicroscopyDataset
    from omio.readers._pread import PlaneReader

__all__ = ["write_ometiff"]

SlabRead = Callable[["da.Array", tuple[slice, slice]], np.ndarray[Any, Any]]
"""Reads the slab of given T and Z ranges (all C) of an array, as a TZCYX numpy array."""

Compression = Literal["zlib", "zstd", "lzw", "none"]
_BIGTIFF_LIMIT = 2**32 - 2**25  # classic TIFF offsets are 32 bit; keep room for metadata
_LEVELS: dict[str, tuple[int, int]] = {"zlib": (0, 9), "zstd": (1, 22)}
_PYRAMID_TILE = (512, 512)  # tile used for pyramids when none is given (viewers read pyramids by tiles)
_TAGS = {"zlib": 8, "zstd": 50000, "lzw": 5}  # TIFF Compression tag values (zlib is Adobe deflate, as in tifffile)
# Compressed strips hold about 256 KB of pixels (128 rows of a 1024-wide uint16 plane), tifffile's default and the
# upper end of what readers expect (TIFF-EP advises <= 64 KB). Chosen by measurement: converting 1 GB of 1024 x 1024
# uint16 planes with zlib level 6 on 2 cores, 14 interleaved runs each, took 6.31 s (median) with 256 KB strips,
# 6.44 s with 128 KB and 6.54 s with 64 KB, and the file was 0.5% and 1.5% smaller than with those: fewer, larger
# segments cost less per-segment work (futures, GIL hand-overs, TIFF bookkeeping) and compress a little better.
_STRIP_BYTES = 256 * 1024
_WINDOW_BYTES = 8 * 2**20  # pixels of the segments in flight (32 strips of 256 KB): a few ms of work per core
_HEAD_BYTES = 64 * 2**20  # most encoded bytes held while the OME-XML is made (about a second of encoding)


def _codec(compression: str | None, level: int) -> tuple[str | None, dict[str, Any]]:
    name = (compression or "none").lower()
    if name not in ("zlib", "zstd", "lzw", "none", "deflate"):
        raise MetadataError(f"compression {compression!r} is not supported; use 'zlib', 'zstd', 'lzw' or 'none'")
    name = "zlib" if name == "deflate" else name
    if name in _LEVELS:
        lo, hi = _LEVELS[name]
        if not isinstance(level, int) or not (0 if name == "zlib" else lo) <= level <= hi:
            raise MetadataError(f"{name} level must be an integer from {lo} to {hi}, got {level!r}")
        if name == "zlib" and level == 0:
            return None, {}  # level 0 means "no compression", as in OMIO
        return name, {"level": level}
    if name == "lzw":
        return "lzw", {}
    return None, {}


def _tiff_ome(ds: MicroscopyDataset) -> OME:
    """The dataset's OME with the pixels mapped to this file's IFDs.

    Its ``Plane`` elements (the dataset's plane table and origin, see
    :attr:`omio.MicroscopyDataset.planes`) are written as they are.
    """
    from ome_types.model import TiffData

    ome = ds.ome
    t, z, c, _, _ = ds.shape
    image = ome.images[0]
    pixels = image.pixels.model_copy(
        update={
            "dimension_order": "XYCZT",
            "big_endian": False,
            "interleaved": False,
            "metadata_only": None,
            "bin_data_blocks": [],
            "tiff_data_blocks": [TiffData(ifd=0, plane_count=t * z * c)],
        }
    )
    image = image.model_copy(update={"pixels": pixels})
    return ome.model_copy(update={"images": [image], "uuid": f"urn:uuid:{uuid.uuid4()}"})


def _slabs(arr: da.Array, target_bytes: int = 8 * 2**20) -> list[tuple[slice, slice]]:
    """T/Z ranges whose slabs (all C) are unions of whole chunks and runs of consecutive planes, in order.

    Time points whose whole Z stack fits in about ``target_bytes`` (or whose chunks span
    several time points) are grouped into slabs of whole Z stacks up to about that size;
    a larger time point is cut into Z ranges of whole chunks up to about that size. So
    each dask computation, or byte-range read, carries enough work to hide its overhead,
    and each slab is one T or whole Z stacks: consecutive planes in T, Z, C order.
    """
    t_chunks, z_chunks = arr.chunks[0], arr.chunks[1]
    plane = int(np.prod(arr.shape[2:])) * arr.dtype.itemsize  # all C of one T, Z
    stack = arr.shape[1] * plane  # the whole Z of one T
    z_full = any(n > 1 for n in t_chunks)
    whole_z = slice(0, arr.shape[1])
    out: list[tuple[slice, slice]] = []
    group: tuple[int, int] | None = None  # time points [start, stop) of whole Z stacks not yet in a slab
    t0 = 0
    for nt in t_chunks:
        if z_full or nt * stack <= target_bytes:
            if group is not None and (t0 + nt - group[0]) * stack > target_bytes:
                out.append((slice(*group), whole_z))
                group = None
            group = (t0 if group is None else group[0], t0 + nt)
        else:
            if group is not None:
                out.append((slice(*group), whole_z))
                group = None
            z0 = 0
            start = 0
            for nz in z_chunks:
                if z0 > start and (z0 + nz - start) * plane > target_bytes:
                    out.append((slice(t0, t0 + nt), slice(start, z0)))
                    start = z0
                z0 += nz
            out.append((slice(t0, t0 + nt), slice(start, z0)))
        t0 += nt
    if group is not None:
        out.append((slice(*group), whole_z))
    return out


def _slab_sizes(arr: da.Array) -> list[int]:
    """The number of planes in each slab of :func:`_slabs`."""
    return [(t.stop - t.start) * (z.stop - z.start) * arr.shape[2] for t, z in _slabs(arr)]


def _prefetched[T](
    arr: da.Array, read: Callable[[da.Array, tuple[slice, slice]], T], *, prefetch: int = 1
) -> Iterator[T]:
    """Yield ``read(arr, slab)`` for the slabs of ``arr`` in order, reading ahead in a thread."""
    slabs = _slabs(arr)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="omio-read") as pool:
        pending: deque[Future[T]] = deque()
        it = iter(slabs)
        for _ in range(prefetch):
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(read, arr, nxt))
        for _ in range(len(slabs)):
            done = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(read, arr, nxt))
            yield done


def _planes(arr: da.Array, slab: SlabRead | None = None) -> Iterator[np.ndarray[Any, Any]]:
    """Yield the YX planes of a TZCYX dask array in T, Z, C order, reading ahead (with ``slab`` if given)."""
    read: Callable[[da.Array, tuple[slice, slice]], Iterable[np.ndarray[Any, Any]]]
    if slab is not None:
        read = functools.partial(_stack, slab)
    elif _one_plane_chunks(arr):
        read = _plane_reader(arr)
    else:
        read = functools.partial(_stack, _compute)
    slabs: Iterator[Iterable[np.ndarray[Any, Any]]] = _prefetched(arr, read)
    for planes in slabs:
        for plane in planes:
            yield np.ascontiguousarray(plane.reshape(plane.shape[-2:]))


def _direct_slabs(ds: MicroscopyDataset) -> SlabRead | None:
    """How slabs are read when the pixels are still the file's and its reader reads planes itself, else None."""
    direct = ds._direct_read()
    if direct is None or direct.planes is None or not direct.planes.unchanged():
        return None  # (a file rewritten since it was opened is read through dask: what it now holds)
    return functools.partial(_read_direct, direct.planes)


def _read_direct(planes: PlaneReader, arr: da.Array, where: tuple[slice, slice]) -> np.ndarray[Any, Any]:
    """A slab of :func:`_slabs` read by the reader's own plane reads (one T, or whole Z: consecutive planes)."""
    t, z = where
    if t.stop - t.start > 1 and (z.start, z.stop) != (0, arr.shape[1]):  # cannot happen: _slabs cuts no such slab
        raise RuntimeError(f"slab {where} is not one run of planes")
    if not planes.unchanged():
        raise FileFormatError(
            f"{planes.path}: the file changed (size or modification time) while it was being read; nothing was "
            "written. Open it again once it is complete, then write."
        )
    out = np.empty((t.stop - t.start, z.stop - z.start, *arr.shape[2:]), dtype=arr.dtype)
    planes.read(out, (t.start * arr.shape[1] + z.start) * arr.shape[2])
    return out


def _one_plane_chunks(arr: da.Array) -> bool:
    """True when every chunk is one whole YX plane (as a TIFF page or a CZI subblock read)."""
    return all(n == 1 for axis in arr.chunks[:3] for n in axis) and all(len(axis) == 1 for axis in arr.chunks[3:])


def _compute(arr: da.Array, where: tuple[slice, slice]) -> np.ndarray[Any, Any]:
    # Locally, one slab is read in this thread while tifffile compresses the previous one on every core: a
    # second thread pool would only compete with it (measured: ~8% slower, ~80 MB more memory).
    return _native(arr[where[0], where[1]].compute(scheduler=scheduler(local=dask.local.get_sync)))


def _native(block: Any) -> np.ndarray[Any, Any]:
    """A computed block as a numpy array in the machine's byte order (not copied when it already is)."""
    array = np.asarray(block)
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _stack(slab: SlabRead, arr: da.Array, where: tuple[slice, slice]) -> np.ndarray[Any, Any]:
    """A slab read as one array, as a stack of YX planes in T, Z, C order."""
    data = slab(arr, where)
    return data.reshape((-1, *data.shape[-2:]))


def _plane_reader(arr: da.Array) -> Callable[[da.Array, tuple[slice, slice]], list[np.ndarray[Any, Any]]]:
    """How the slabs of an array of one-plane chunks are read: each plane as its chunk was read (no copy).

    Computing each slab as its own dask collection optimizes the whole graph again
    every time (about 3 ms of Python per slab, holding the GIL that the encoding threads
    need between segments; 0.7 CPU-s for 1 GB of 2 MB planes). So, when omio picks the
    scheduler, the array is optimized once and each slab's tasks are taken from it
    (:func:`omio._block_tasks.block_tasks`, a batch of planes at a time) and run in the
    reading thread, which reads the slabs in :func:`_slabs` order. With a distributed
    client or a configured scheduler each slab goes through ``compute`` as before.
    """
    if scheduler(local=dask.local.get_sync) is not dask.local.get_sync:
        return _compute_planes
    from dask.base import optimize

    (optimized,) = optimize(arr)  # type: ignore[no-untyped-call, unused-ignore]

    def keys_of(where: tuple[slice, slice]) -> list[tuple[Any, ...]]:
        t, z = where  # one-plane chunks: the block index is the plane index
        ranges = range(t.start, t.stop), range(z.start, z.stop), range(arr.shape[2])
        return [(optimized.name, *index, 0, 0) for index in itertools.product(*ranges)]

    tasks = block_tasks(optimized, _slabs(arr), keys_of)

    def read(arr: da.Array, where: tuple[slice, slice]) -> list[np.ndarray[Any, Any]]:
        slab, keys, graph = next(tasks)
        if slab != where:  # cannot happen: the slabs are read one after another, in order
            raise RuntimeError(f"slab {where} read out of order (expected {slab})")
        return [_native(p) for p in dask.local.get_sync(graph, keys)]

    return read


def _compute_planes(arr: da.Array, where: tuple[slice, slice]) -> list[np.ndarray[Any, Any]]:
    """The planes of a slab of one-plane chunks, each as its chunk was read, computed as a dask collection."""
    blocks = arr[where[0], where[1]].to_delayed().ravel()  # T, Z, C order
    from dask.base import compute

    planes = compute(*blocks, scheduler=scheduler(local=dask.local.get_sync))
    return [_native(p) for p in planes]


def _compute_levels(
    arr: da.Array, where: tuple[slice, slice], n_levels: int, slab: SlabRead
) -> list[np.ndarray[Any, Any]]:
    """A slab (read by ``slab``) and its ``n_levels - 1`` reduced levels, each as a stack of YX planes (T, Z, C order).

    Each level is the 2 x 2 Y/X block mean of the one before (:func:`omio.pyramid.block_mean`,
    the means :func:`omio.pyramid.downsample` computes), taken from the slab in memory.
    """
    levels = [slab(arr, where)]
    for _ in range(n_levels - 1):
        levels.append(pyramids.block_mean(levels[-1], {3: 2, 4: 2}))  # TZCYX: Y and X
    return [np.ascontiguousarray(level.reshape((-1, *level.shape[-2:]))) for level in levels]


def _segment_shape(plane: tuple[int, int], tile: tuple[int, int] | None, itemsize: int) -> tuple[int, int]:
    """The (Y, X) shape of the segments of a plane: the tile, or strips of whole rows (``RowsPerStrip`` rows)."""
    if tile is not None:
        return tile
    return min(plane[0], max(1, _STRIP_BYTES // (plane[1] * itemsize))), plane[1]


def _segment_count(plane: tuple[int, int], tile: tuple[int, int] | None, itemsize: int) -> int:
    """The number of strips or tiles of a plane."""
    sy, sx = _segment_shape(plane, tile, itemsize)
    return math.ceil(plane[0] / sy) * math.ceil(plane[1] / sx)


def _segments(planes: Iterable[np.ndarray[Any, Any]], tile: tuple[int, int] | None) -> Iterator[np.ndarray[Any, Any]]:
    """The strips or tiles of each YX plane in file order, as views (tiles at the right and bottom edges are cut)."""
    for plane in planes:
        sy, sx = _segment_shape(plane.shape, tile, plane.itemsize)
        for y0 in range(0, plane.shape[0], sy):
            for x0 in range(0, plane.shape[1], sx):
                yield plane[y0 : y0 + sy, x0 : x0 + sx]


def _encoder(
    compression: str, args: dict[str, Any], dtype: np.dtype[Any], tile: tuple[int, int] | None
) -> Callable[[np.ndarray[Any, Any]], bytes]:
    """The function that encodes one segment as tifffile would for this compression.

    The codec is tifffile's own for the tag (``imagecodecs.deflate_encode`` or
    ``zlib_encode`` for zlib, ``zstd_encode``, ``lzw_encode``) called with the same
    arguments; like tifffile's ``encode_chunks``, a segment is first made contiguous
    in the file's byte order and a tile cut at an edge is padded with zeros to the full tile;
    boolean pixels are packed 8 to a byte along each row, as TIFF stores 1-bit images.
    """
    import tifffile

    codec = tifffile.TIFF.COMPRESSORS[_TAGS[compression]]

    def encode(segment: np.ndarray[Any, Any]) -> bytes:
        segment = np.ascontiguousarray(segment, dtype)
        if tile is not None and segment.shape != tile:
            segment = np.pad(segment, [(0, n - m) for n, m in zip(tile, segment.shape, strict=True)])
        if segment.dtype == np.bool_:  # stored as 1 bit per pixel, each row padded to whole bytes (as tifffile)
            segment = np.packbits(segment, axis=-1)
        encoded: bytes = codec(segment, **args)
        return encoded

    return encode


def _encoded(
    segments: Iterable[np.ndarray[Any, Any]], encode: Callable[[np.ndarray[Any, Any]], bytes], workers: int, window: int
) -> Generator[bytes]:
    """Yield ``encode(segment)`` for each segment in order, encoding up to ``window`` segments ahead.

    ``workers`` threads encode while the segments already done are written, with no
    barrier between batches; a segment is submitted as soon as the oldest one is handed
    on, so memory is bounded by the window. An error in ``encode`` or in reading the
    segments is raised here.
    """
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="omio-encode")
    pending: deque[Future[bytes]] = deque()
    try:
        for segment in segments:
            pending.append(pool.submit(encode, segment))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(cancel_futures=True)


def write_ometiff(
    ds: MicroscopyDataset,
    path: str | Path,
    *,
    compression: Compression | None = "zlib",
    level: int = 6,
    overwrite: bool = False,
    bigtiff: bool | None = None,
    tile: tuple[int, int] | None = None,
    pyramid: bool | int = False,
    progress: bool = False,
    maxworkers: int | None = None,
) -> Path:
    """Write a dataset to an OME-TIFF file.

    Parameters
    ----------
    ds
        The dataset (any size: pixels are streamed, never all loaded).
    path
        The output path; it is the path written unless it exists.
    compression
        ``"zlib"`` (deflate, default), ``"zstd"``, ``"lzw"`` or ``"none"``.
    level
        zlib 0-9 (0 = no compression, as in OMIO), zstd 1-22; ignored for lzw.
    overwrite
        Replace an existing file. Otherwise a free name ``<stem>_<n><suffix>``
        is chosen and returned.
    bigtiff
        Force (True) or forbid (False) BigTIFF; by default it is used when the
        uncompressed pixels could pass 4 GB.
    tile
        Write tiles of this (Y, X) shape (multiples of 16) instead of strips.
        With a pyramid it defaults to (512, 512) for images larger than that.
    pyramid
        Also store reduced resolutions as SubIFDs of every plane: ``True`` for as
        many levels as :func:`omio.pyramid.level_count` gives (halving Y and X until
        they fit in 256 pixels), an integer for that many levels in total (1 = none).
        Each level is the previous one averaged over 2 x 2 blocks in Y and X
        (:func:`omio.pyramid.pyramid`).
    progress
        Show a progress bar over planes.
    maxworkers
        Threads compressing segments (default: all cores).

    Returns
    -------
    Path
        The path written.
    """
    import tifffile

    codec, codec_args = _codec(compression, level)
    ome_name(ds.dtype, writing=f"{path}: OME-TIFF")  # before anything is written
    if tile is not None and (len(tile) != 2 or any(int(n) % 16 for n in tile)):
        raise DimensionError(f"tile must be two multiples of 16 (Y, X), got {tile!r}")
    t, z, c, y, x = ds.shape
    n_planes = t * z * c
    if n_planes == 0 or y == 0 or x == 0:
        raise DimensionError(f"cannot write an empty image of shape {ds.shape}")
    n_levels = _level_total(pyramid, ds.shape, path)
    if n_levels > 1 and tile is None and max(y, x) > max(_PYRAMID_TILE):
        tile = _PYRAMID_TILE
    tiles = (int(tile[0]), int(tile[1])) if tile is not None else None
    level_shapes = [(y >> i, x >> i) for i in range(n_levels)]  # floor(n / 2**i), as omio.pyramid
    stored = n_planes * sum(_stored_plane(shape, tiles) for shape in level_shapes) * ds.dtype.itemsize
    use_bigtiff = stored > _BIGTIFF_LIMIT if bigtiff is None else bigtiff
    arr = ds.data
    direct_slabs = _direct_slabs(ds)
    dtype = np.dtype(ds.dtype).newbyteorder("=")
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_planes, unit="plane", desc=f"writing {Path(path).name}")
    compressed = codec is not None
    encode = _encoder(codec, codec_args, dtype.newbyteorder("<"), tiles) if codec is not None else None
    workers = maxworkers if maxworkers is not None else cpu_count()
    segment = _segment_shape((y, x), tiles, dtype.itemsize)
    window = max(2 * workers, _WINDOW_BYTES // (segment[0] * segment[1] * dtype.itemsize))
    options: dict[str, Any] = {
        "dtype": dtype,
        "photometric": "minisblack",
        "compression": _TAGS[codec] if codec is not None else None,
        "compressionargs": codec_args or None,
        "tile": tiles,
        "metadata": None,
    }
    try:
        # The OME-XML and the resolution tags (ome-types and pint: about a second, one core) are made in a thread
        # while the first pixels are read and encoded on the other cores.
        with (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="omio-metadata") as metadata,
            atomic_output(path, overwrite=overwrite) as (tmp, result),
        ):
            described = metadata.submit(_described, ds, n_levels)
            # The new, empty temporary is opened without truncation ("r+b", not tifffile's "wb"): on ext4 a file
            # truncated and then written is flushed to disk whole when closed (auto_da_alloc), which cost
            # about 0.2-0.3 s per GB of output with no safety gained for a file renamed into place afterwards.
            with open(tmp, "r+b") as fh, tifffile.TiffWriter(fh, bigtiff=use_bigtiff, byteorder="<") as tw:
                planes: Iterator[np.ndarray[Any, Any]]
                if n_levels == 1:  # all planes in one write
                    planes, sizes = _planes(arr, direct_slabs), [n_planes]
                    if bar is not None:
                        planes = _counted(planes, bar)
                else:  # each slab's planes with SubIFDs, then its reduced planes into them
                    levels = functools.partial(_compute_levels, n_levels=n_levels, slab=direct_slabs or _compute)
                    slabs = _prefetched(arr, levels)
                    planes, sizes = (p for levels in slabs for stack in levels for p in stack), _slab_sizes(arr)
                # One stream for all writes, so that encoding runs on across them. Each write takes its share
                # through islice: tifffile takes exactly the items of its pages and cannot close the stream.
                with contextlib.closing(_handed(planes, tiles, encode, workers, window)) as handed:
                    data = _started(handed, described, _HEAD_BYTES)
                    xml, resolutions = described.result()
                    tags: dict[str, Any] = {"description": xml, "software": f"omio {_version()}"}
                    for n in sizes:
                        for index, shape in enumerate(level_shapes):
                            tw.write(
                                itertools.islice(data, n * _items_per_plane(shape, tiles, compressed, dtype.itemsize)),
                                shape=(n, *shape),
                                **_page_options(index, n_levels, shape, tiles, compressed, dtype.itemsize),
                                **tags,
                                **options,
                                **resolutions[index],
                            )
                            tags = {"software": False}  # description and software on the first page only
                        if bar is not None and n_levels > 1:
                            bar.update(n)
    finally:
        if bar is not None:
            bar.close()
    return result[0]


def _described(ds: MicroscopyDataset, n_levels: int) -> tuple[bytes, list[dict[str, Any]]]:
    """The OME-XML (UTF-8) of ``ds`` and the resolution tags of each of its ``n_levels`` levels."""
    return _tiff_ome(ds).to_xml().encode("utf-8"), [_resolution(ds, 2**index) for index in range(n_levels)]


def _started[T](items: Iterator[T], until: Future[Any], most_bytes: int) -> Iterator[T]:
    """``items``, with its first items taken while ``until`` runs, so the work behind them overlaps it.

    Items are taken (at least one, so reading and encoding have begun) until ``until``
    is done or they hold ``most_bytes``; the iterator returned yields them, then the rest.
    """
    head: list[T] = []
    held = 0
    for item in items:
        head.append(item)
        held += len(item) if isinstance(item, bytes) else getattr(item, "nbytes", 0)
        if until.done() or held >= most_bytes:
            break
    return itertools.chain(head, items)


def _handed(
    planes: Iterable[np.ndarray[Any, Any]],
    tile: tuple[int, int] | None,
    encode: Callable[[np.ndarray[Any, Any]], bytes] | None,
    workers: int,
    window: int,
) -> Generator[Any]:
    """What tifffile is given for these planes: their encoded strips or tiles, else their tiles or the planes.

    Uncompressed tiles cut at an edge are padded by tifffile.
    """
    if encode is not None:
        yield from _encoded(_segments(planes, tile), encode, workers, window)
    else:
        yield from planes if tile is None else _segments(planes, tile)


def _items_per_plane(shape: tuple[int, int], tile: tuple[int, int] | None, compressed: bool, itemsize: int) -> int:
    """How many items of :func:`_handed` make one plane of this shape."""
    return _segment_count(shape, tile, itemsize) if compressed or tile is not None else 1


def _page_options(
    index: int,
    n_levels: int,
    shape: tuple[int, int],
    tile: tuple[int, int] | None,
    compressed: bool,
    itemsize: int,
) -> dict[str, Any]:
    """tifffile options for the pages of level ``index``: their place in the pyramid and their strips."""
    page: dict[str, Any] = {}
    if index > 0:
        page["subfiletype"] = 1  # a reduced image, in the SubIFDs of a full-resolution page
    elif n_levels > 1:
        page["subifds"] = n_levels - 1
    if compressed and tile is None:
        page["rowsperstrip"] = _segment_shape(shape, None, itemsize)[0]  # the strips _segments cut
    return page


def _level_total(pyramid: bool | int, shape: tuple[int, ...], path: str | Path) -> int:
    """The number of levels asked for, checked against the image size."""
    if isinstance(pyramid, bool):
        return pyramids.level_count(shape) if pyramid else 1
    if not isinstance(pyramid, int) or pyramid < 1:
        raise DimensionError(f"{path}: pyramid must be True, False or a number of levels >= 1, got {pyramid!r}")
    y, x = shape[-2:]
    if min(y, x) >> (pyramid - 1) == 0:
        most = min(y, x).bit_length()
        raise DimensionError(
            f"{path}: {pyramid} pyramid levels would halve Y x X = {y} x {x} to nothing; use at most {most}"
        )
    return pyramid


def _stored_plane(shape: tuple[int, int], tile: tuple[int, int] | None) -> int:
    """Pixels stored for one plane of ``shape`` (tiles are padded to whole tiles)."""
    if tile is None:
        return shape[0] * shape[1]
    return math.ceil(shape[0] / tile[0]) * tile[0] * math.ceil(shape[1] / tile[1]) * tile[1]


def _counted(planes: Iterator[np.ndarray[Any, Any]], bar: Any) -> Iterator[np.ndarray[Any, Any]]:
    # Count a plane when it is taken to be encoded (or handed to tifffile): none is taken past the last.
    for plane in planes:
        bar.update(1)
        yield plane


def _resolution(ds: MicroscopyDataset, factor: int = 1) -> dict[str, Any]:
    """TIFF resolution tags (pixels per centimetre) so plain TIFF readers see the scale too.

    ``factor`` is the level's reduction in Y and X (``2 ** level``); its pixel sizes come
    from :func:`omio.pyramid.level_geometry`, as every reader and writer computes them.
    """
    sizes = pyramids.level_geometry(ds.record.physical_sizes, {"Y": factor, "X": factor}).physical_sizes
    px_per_cm: list[float] = []
    for m in (sizes["X"], sizes["Y"]):
        cm = units.convert(m, "centimeter") if m is not None else None
        if cm is None or not (math.isfinite(cm) and cm > 0):
            return {}  # unknown, or in a unit that is not a length
        px_per_cm.append(1.0 / cm)
    return {"resolution": (px_per_cm[0], px_per_cm[1]), "resolutionunit": "CENTIMETER"}


def _version() -> str:
    from omio import __version__

    return __version__
