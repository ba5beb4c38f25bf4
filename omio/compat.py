"""OMIO's functional API on top of omio's objects.

Code written for OMIO keeps working by changing its import: ``imread`` returns
``(image, metadata)`` with a lazy dask array in TZCYX and the flat metadata dict
(:attr:`MicroscopyDataset.metadata`); ``convert_to_ometiff``,
``convert_bids_batch_to_ometiff`` and ``imwrite`` do what their OMIO namesakes do, and
the names of OMIO's current releases (``imconvert``, ``bids_batch_process``,
``bids_batch_convert``) are aliases. Differences, on purpose:

- Failures raise an :mod:`omio.errors` exception instead of printing and returning ``None``.
- ``zeropadding=True`` (OMIO's default) maps to ``policy="pad"``, ``False`` to ``"strict"``.
- Outputs never overwrite sources; a taken name gets ``_1``, ``_2``... unless ``overwrite=True``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omio import units
from omio.dataset import MicroscopyDataset
from omio.errors import MergeError, MetadataError, OutputExistsError
from omio.policies import Axis, Policy

if TYPE_CHECKING:
    import dask.array as da

    from omio.bids import BatchReport, Rule

__all__ = [
    "bids_batch_convert",
    "bids_batch_process",
    "convert_bids_batch_to_ometiff",
    "convert_to_ometiff",
    "imconvert",
    "imread",
    "imwrite",
]

CONVERTED_FOLDER = "omio_converted"
"""Sub-folder of an input folder that :func:`convert_to_ometiff` writes into by default."""


def _policy(zeropadding: bool) -> Policy:
    return "pad" if zeropadding else "strict"


def _read(
    fname: str | Path | Sequence[str | Path],
    *,
    all_scenes: bool,
    merge: bool,
    axis: Axis,
    policy: Policy,
    follow_symlinks: bool,
) -> list[MicroscopyDataset]:
    """Datasets for a file, a folder or a list of files (merged into one when asked)."""
    from omio._api import open as omio_open
    from omio._api import open_all
    from omio.folders import open_folder
    from omio.merge import concat

    if not isinstance(fname, (str, Path)):
        items = [omio_open(p) for p in fname]
        return [concat(items, axis=axis, policy=policy)] if merge else items
    path = Path(fname)
    if path.is_dir():
        if merge:
            return [open_folder(path, merge_along=axis, policy=policy, follow_symlinks=follow_symlinks)]
        return list(open_folder(path, follow_symlinks=follow_symlinks))
    return open_all(path) if all_scenes else [omio_open(path)]


def imread(
    fname: str | Path | Sequence[str | Path],
    *,
    return_list: bool = False,
    merge_multiple_files_in_folder: bool = False,
    merge_along_axis: Axis = "T",
    zeropadding: bool = True,
    follow_symlinks: bool = False,
) -> tuple[da.Array, dict[str, Any]] | tuple[list[da.Array], list[dict[str, Any]]]:
    """Read images as ``(image, metadata)`` pairs, lazily.

    Parameters
    ----------
    fname
        A file, a folder (all readable images in natural order) or a list of files.
    return_list
        Return ``(images, metadatas)`` lists: every scene of a file, every image of a folder.
    merge_multiple_files_in_folder
        Merge the images of a folder (or list) along ``merge_along_axis``.
    merge_along_axis
        ``"T"``, ``"Z"`` or ``"C"``.
    zeropadding
        Pad differing axes with zeros when merging (``policy="pad"``); ``False`` requires
        them to match (``policy="strict"``).
    follow_symlinks
        In a folder, follow symbolic links that lead out of it (default: skip them).

    Returns
    -------
    tuple
        ``(dask array TZCYX, metadata dict)``, or two lists with ``return_list=True``.
        No pixels are read until the array is computed.

    Raises
    ------
    omio.errors.MergeError
        For a folder of several images without ``return_list`` or a merge.
    """
    datasets = _read(
        fname,
        all_scenes=return_list,
        merge=merge_multiple_files_in_folder,
        axis=merge_along_axis,
        policy=_policy(zeropadding),
        follow_symlinks=follow_symlinks,
    )
    if return_list:
        return [ds.data for ds in datasets], [ds.metadata for ds in datasets]
    if len(datasets) != 1:
        raise MergeError(
            f"'{fname}' holds {len(datasets)} images; pass return_list=True to get them all "
            "or merge_multiple_files_in_folder=True to merge them"
        )
    return datasets[0].data, datasets[0].metadata


def _output_dir(fname: str | Path | Sequence[str | Path], output_dir: str | Path | None) -> tuple[Path, Path]:
    """The output folder, and the root it must stay inside (the input folder for ``omio_converted``)."""
    if output_dir is not None:
        return Path(output_dir), Path(output_dir)
    if isinstance(fname, (str, Path)):
        path = Path(fname)
        return (path / CONVERTED_FOLDER, path) if path.is_dir() else (path.parent, path.parent)
    first = Path(next(iter(fname)))
    return first.parent, first.parent


def _write(ds: MicroscopyDataset, target: Path, *, level: int, overwrite: bool, root: Path | None = None) -> Path:
    """Write ``target`` inside ``root`` (default: its folder), never over a source nor through a link out of it."""
    from omio.writers._output import prepare_output

    sources = {Path(ds.path).resolve()} if ds.path is not None else set()
    if overwrite and target.resolve() in sources:
        raise OutputExistsError(f"{target} is the source being converted; it is never overwritten")
    prepare_output(target, root if root is not None else target.parent)
    return ds.to_ometiff(target, compression="zlib", level=level, overwrite=overwrite)


def convert_to_ometiff(
    fname: str | Path | Sequence[str | Path],
    *,
    output_dir: str | Path | None = None,
    merge_multiple_files_in_folder: bool = False,
    merge_along_axis: Axis = "T",
    zeropadding: bool = True,
    compression_level: int = 6,
    overwrite: bool = False,
    follow_symlinks: bool = False,
) -> list[Path]:
    """Convert a file, a list of files or a folder to OME-TIFF.

    Parameters
    ----------
    fname
        A file, a list of files or a folder.
    output_dir
        Where to write. Default: a file's own folder; for a folder, its sub-folder
        ``omio_converted`` (so re-reading the folder does not pick the outputs up);
        for a list, the first file's folder.
    merge_multiple_files_in_folder, merge_along_axis, zeropadding
        As in :func:`imread`; a merge writes ``<folder name>_merged.ome.tif``.
    compression_level
        zlib level 0-9 (0 = uncompressed).
    overwrite
        Replace existing outputs (never a source); otherwise a free name is used.
    follow_symlinks
        In a folder, follow symbolic links that lead out of it (default: skip them).

    Returns
    -------
    list of Path
        The files written, in input order.

    Raises
    ------
    omio.errors.OutputError
        When an output would be written outside its folder through a symbolic link.
    """
    from omio.bids import output_names

    datasets = _read(
        fname,
        all_scenes=False,
        merge=merge_multiple_files_in_folder,
        axis=merge_along_axis,
        policy=_policy(zeropadding),
        follow_symlinks=follow_symlinks,
    )
    out_dir, root = _output_dir(fname, output_dir)
    if merge_multiple_files_in_folder:
        base = Path(fname) if isinstance(fname, (str, Path)) else out_dir
        name = f"{base.name if Path(base).is_dir() else base.stem}_merged.ome.tif"
        return [_write(datasets[0], out_dir / name, level=compression_level, overwrite=overwrite, root=root)]
    paths = [Path(ds.path) if ds.path is not None else Path(f"image_{i}") for i, ds in enumerate(datasets)]
    names = output_names(paths)
    return [
        _write(ds, out_dir / names[p], level=compression_level, overwrite=overwrite, root=root)
        for ds, p in zip(datasets, paths, strict=True)
    ]


imconvert = convert_to_ometiff
"""OMIO's current name for :func:`convert_to_ometiff`."""


def convert_bids_batch_to_ometiff(
    fname: str | Path,
    sub: Rule = "sub-",
    exp: Rule | None = None,
    tagfolder: Rule | None = None,
    merge_tagfolders: bool = False,
    *,
    merge_multiple_files_in_folder: bool = False,
    merge_along_axis: Axis = "T",
    zeropadding: bool = True,
    compression_level: int = 6,
    output_root: str | Path | None = None,
    client: Any = None,
    progress: bool = True,
    overwrite: bool = False,
    follow_symlinks: bool = False,
) -> BatchReport:
    """Convert a BIDS-like project to OME-TIFF (see :mod:`omio.bids` for the layout).

    ``sub``, ``exp``, ``tagfolder`` and ``merge_tagfolders`` may be given by position
    as in OMIO. Jobs that fail are reported, not raised; jobs whose output already
    exists are skipped, so a re-run resumes. ``overwrite`` and ``follow_symlinks`` are
    those of :func:`omio.bids.convert` and :func:`omio.bids.scan`.

    Returns
    -------
    omio.bids.BatchReport
        Each input, output, status and error; also written as JSON next to the outputs.
    """
    from omio import bids

    table = bids.scan(
        fname,
        sub=sub,
        exp=exp,
        tagfolder=tagfolder,
        merge_tagfolders=merge_tagfolders,
        merge_files=merge_multiple_files_in_folder,
        merge_along=merge_along_axis,
        policy=_policy(zeropadding),
        output_root=output_root,
        follow_symlinks=follow_symlinks,
    )
    level = compression_level
    return bids.convert(table, client=client, compression="zlib", level=level, progress=progress, overwrite=overwrite)


bids_batch_process = convert_bids_batch_to_ometiff
"""OMIO's current name for :func:`convert_bids_batch_to_ometiff`."""
bids_batch_convert = convert_bids_batch_to_ometiff
"""Another name OMIO's documentation uses for :func:`convert_bids_batch_to_ometiff`."""


def _quantity_from(md: Mapping[str, Any], key: str, default_unit: str) -> Any:
    value = md.get(key)
    if value is None:
        return None
    unit = md.get(f"{key}Unit") or default_unit
    return units.quantity(float(value), str(unit))


def _dataset_from(image: Any, md: Mapping[str, Any]) -> MicroscopyDataset:
    axes = str(md.get("axes") or "TZCYX")
    if len(axes) != getattr(image, "ndim", -1):
        raise MetadataError(
            f"the image has {getattr(image, 'ndim', '?')} dims but metadata axes is {axes!r}; "
            "give metadata['axes'] with one letter per dim (e.g. 'TZCYX')"
        )
    sizes = {a: _quantity_from(md, f"PhysicalSize{a}", "micrometer") for a in ("X", "Y", "Z")}
    names = md.get("channel_names")
    ds = MicroscopyDataset.from_array(
        image,
        axes=axes,
        physical_pixel_sizes={k: v for k, v in sizes.items() if v is not None},
        time_increment=_quantity_from(md, "TimeIncrement", "second"),
        channel_names=list(names) if names is not None else None,
        name=md.get("name"),
    )
    for namespace, values in dict(md.get("Annotations") or {}).items():
        ds = ds.with_annotations(str(namespace), dict(values))
    return ds


def imwrite(
    fname: str | Path,
    images: Any,
    metadatas: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
    *,
    compression_level: int = 6,
    overwrite: bool = False,
) -> list[Path]:
    """Write one image or a list of images with their metadata dicts as OME-TIFF.

    Parameters
    ----------
    fname
        The output file; with several images ``<stem>_<i>.ome.tif`` next to it.
    images
        A numpy or dask array, or a list of them; dims as in ``metadata["axes"]``
        (default ``"TZCYX"``).
    metadatas
        A metadata dict as :func:`imread` returns (or a list, one per image); keys used:
        ``axes``, ``PhysicalSizeX/Y/Z`` (+ ``Unit``), ``TimeIncrement`` (+ ``Unit``),
        ``channel_names``, ``name`` and ``Annotations``.
    compression_level
        zlib level 0-9 (0 = uncompressed).
    overwrite
        Replace existing files; otherwise a free name is chosen.

    Returns
    -------
    list of Path
        The files written.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.ome.tif"
    >>> imwrite(out, np.zeros((4, 8, 8), "uint8"), {"axes": "ZYX", "PhysicalSizeZ": 2.0})[0].name
    'a.ome.tif'
    """
    from omio.writers._output import split_suffix

    image_list = list(images) if isinstance(images, (list, tuple)) else [images]
    if metadatas is None:
        md_list: list[Mapping[str, Any]] = [{} for _ in image_list]
    elif isinstance(metadatas, Mapping):
        md_list = [metadatas]
    else:
        md_list = list(metadatas)
    if len(md_list) != len(image_list):
        raise MetadataError(f"{len(image_list)} images but {len(md_list)} metadata dicts")
    target = Path(fname)
    stem, suffix = split_suffix(target)
    suffix = suffix if suffix.lower().startswith(".ome.tif") else ".ome.tif"
    written = []
    for i, (image, md) in enumerate(zip(image_list, md_list, strict=True)):
        name = f"{stem}{suffix}" if len(image_list) == 1 else f"{stem}_{i}{suffix}"
        ds = _dataset_from(image, md)
        written.append(_write(ds, target.with_name(name), level=compression_level, overwrite=overwrite))
    return written
