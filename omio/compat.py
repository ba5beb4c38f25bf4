"""OMIO 0.3's functional API, translated onto omio's objects.

Code written for OMIO 0.3 runs unchanged (``from omio.omio import imread`` or
``omio.imread``): the functions keep OMIO 0.3's names, parameters, defaults and
return types, while reading and writing are done by :class:`~omio.MicroscopyDataset`
(lazily, streamed). ``imread`` returns numpy arrays (or zarr arrays with
``zarr_store=``) and OMIO 0.3 metadata dicts. The differences are listed on the
migration page of the documentation; the main ones:

- Missing physical sizes and time increments stay ``None`` (OMIO 0.3 put 1.0 and 0.0).
- Failures raise an exception instead of printing and returning ``None``.
- ``zeropadding=True`` maps to ``policy="pad"``, ``False`` to ``"strict"``.
- Outputs never overwrite sources.

``convert_to_ometiff`` and ``convert_bids_batch_to_ometiff`` are omio's keyword
versions of the same conversions (``<name>_1`` for taken names, a JSON report).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

import dask.array as da

from omio import __version__, units
from omio._compat_meta import CACHE_FOLDER, check_zarr_store, dataset_from_legacy, legacy_metadata
from omio._compat_raw import open_with_sidecar, uses_sidecar
from omio._scenes import warn_scenes_left_out
from omio._scheduler import scheduler
from omio.dataset import MicroscopyDataset
from omio.dims import DIMS
from omio.errors import OmioError, OutputExistsError
from omio.folders import natural_key
from omio.policies import Axis, Policy
from omio.writers._output import split_suffix

if TYPE_CHECKING:
    from omio.bids import BatchReport, Rule

__all__ = [
    "cleanup_omio_cache",
    "convert_bids_batch_to_ometiff",
    "convert_to_ometiff",
    "hello_world",
    "imconvert",
    "imread",
    "imwrite",
    "open_in_napari",
    "read_czi",
    "read_thorlabs_raw",
    "read_tif",
    "version",
]

CONVERTED_FOLDER = "omio_converted"
"""Sub-folder of an input folder that :func:`convert_to_ometiff` writes into by default."""
_LIST_HINT = "pass return_list=True to read every scene"
_CONVERT_HINT = (
    "convert them with omio.open(path, scene=i).to_ometiff(...), or with `omio convert`, which writes every scene"
)


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
    caller: str = "convert_to_ometiff",
) -> list[MicroscopyDataset]:
    """Datasets for a file, a folder or a list of files (merged into one when asked).

    Without ``all_scenes`` a file gives its first scene, and a :class:`ScenesLeftOutWarning`
    names the scenes left out (a folder's files warn in :func:`omio.open_folder`).
    """
    from omio._api import open as omio_open
    from omio.folders import open_folder
    from omio.merge import concat

    if not isinstance(fname, (str, Path)):
        items = [omio_open(p) for p in fname]
        if not all_scenes:
            warn_scenes_left_out(items, caller=caller, hint=_CONVERT_HINT)
        return [concat(items, axis=axis, policy=policy)] if merge else items
    path = Path(fname)
    if path.is_dir():
        if merge:
            return [open_folder(path, merge_along=axis, policy=policy, follow_symlinks=follow_symlinks)]
        return list(open_folder(path, follow_symlinks=follow_symlinks))
    return _scenes_of(path, all_scenes=all_scenes, caller=caller, hint=_CONVERT_HINT)


OnErrorLegacy = Literal["raise", "return_none"]
ZarrStore = Literal["memory", "disk"]


def _check_axis(merge_along_axis: str) -> Axis:
    if merge_along_axis not in ("T", "Z", "C"):
        raise ValueError(f"merge_along_axis must be one of 'T', 'Z', 'C', got {merge_along_axis!r}")
    return merge_along_axis  # type: ignore[return-value]


def _stack_members(folder: Path) -> list[Path]:
    """The tagged co-folders of a folder stack member (``TAG_01`` -> ``TAG_01``, ``TAG_02``...)."""
    tag = folder.name.rstrip("0123456789")
    if not tag or folder.parent == folder:
        return [folder]
    return sorted((p for p in folder.parent.iterdir() if p.is_dir() and p.name.startswith(tag)), key=natural_key)


def _folders(path: Path, recursive: bool) -> list[Path]:
    if not recursive:
        return [path]
    skip = {CONVERTED_FOLDER, CACHE_FOLDER}
    below = [p for p in path.rglob("*") if p.is_dir() and not skip & set(p.relative_to(path).parts)]
    return [path, *sorted(below, key=natural_key)]


def _scenes_of(path: Path, *, all_scenes: bool, caller: str, hint: str) -> list[MicroscopyDataset]:
    """A file's datasets: every scene, or the first with a warning naming the others."""
    from omio._api import open as omio_open
    from omio._api import open_all

    if all_scenes:
        return open_all(path)
    found = [omio_open(path)]
    warn_scenes_left_out(found, caller=caller, hint=hint)
    return found


def _open_file(path: Path, *, all_scenes: bool, caller: str, hint: str) -> list[MicroscopyDataset]:
    """A file's datasets (:func:`_scenes_of`), or the one its OMIO sidecar describes."""
    if uses_sidecar(path):
        return [open_with_sidecar(path)]
    return _scenes_of(path, all_scenes=all_scenes, caller=caller, hint=hint)


def _open_legacy(
    fname: str | PathLike[str] | Sequence[str | PathLike[str]],
    *,
    return_list: bool = False,
    recursive: bool = False,
    folder_stacks: bool = False,
    merge_folder_stacks: bool = False,
    merge_multiple_files_in_folder: bool = False,
    merge_along_axis: str = "T",
    zeropadding: bool = True,
    physicalsize_xyz: Any = None,
    pixelunit: str = "micron",
    caller: str = "imread",
    hint: str = _LIST_HINT,
) -> tuple[list[MicroscopyDataset], list[Path], bool]:
    """Datasets as OMIO 0.3 reads a path, their source paths, and whether a single result is expected.

    A file read without ``return_list`` gives its first scene, and a warning names the
    scenes left out (``caller`` and ``hint`` word it).
    """
    from omio.folders import open_folder, open_folder_stack

    axis = _check_axis(merge_along_axis)
    policy = _policy(zeropadding)
    if not isinstance(fname, (str, PathLike)):
        pairs = [
            _open_legacy(
                p,
                return_list=return_list,
                physicalsize_xyz=physicalsize_xyz,
                pixelunit=pixelunit,
                caller=caller,
                hint=hint,
            )
            for p in fname
        ]
        datasets = [ds for found, _, _ in pairs for ds in found]
        sources = [src for _, found, _ in pairs for src in found]
        if merge_multiple_files_in_folder and datasets:
            return [_concat(datasets, axis, policy)], sources[:1], True
        return datasets, sources, False
    path = Path(fname)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_file():
        datasets = _open_file(path, all_scenes=return_list, caller=caller, hint=hint)
        if merge_multiple_files_in_folder and len(datasets) > 1:
            datasets = [_concat(datasets, axis, policy)]
        single = not return_list
        sources = [path] * len(datasets)
    elif folder_stacks or merge_folder_stacks:
        members = _stack_members(path)
        if merge_folder_stacks:
            datasets, sources, single = [open_folder_stack(members, merge_along=axis, policy=policy)], members[:1], True
        else:
            datasets = [open_folder(m, merge_along=axis, policy=policy) for m in members]
            sources, single = members, False
    else:
        datasets, sources = [], []
        for folder in _folders(path, recursive):
            found = list(open_folder(folder))
            datasets += found
            sources += [Path(ds.path) if ds.path is not None else folder for ds in found]
        if merge_multiple_files_in_folder and datasets:
            datasets, sources = [_concat(datasets, axis, policy)], sources[:1]
        single = merge_multiple_files_in_folder
    if physicalsize_xyz is not None:
        sizes = {a: units.quantity(float(v), pixelunit) for a, v in zip("XYZ", physicalsize_xyz, strict=True)}
        datasets = [ds.with_metadata(physical_pixel_sizes=sizes) for ds in datasets]
    return datasets, sources, single


def _concat(datasets: Sequence[MicroscopyDataset], axis: Axis, policy: Policy) -> MicroscopyDataset:
    from omio.merge import concat

    return datasets[0] if len(datasets) == 1 else concat(datasets, axis=axis, policy=policy)


def _materialize(ds: MicroscopyDataset, source: Path, zarr_store: str | None, zarr_store_path: Any) -> Any:
    """The pixels as OMIO 0.3 returns them: numpy (reads them all), or a zarr array in memory or on disk."""
    if zarr_store is None:
        return ds.to_numpy()
    import zarr

    if zarr_store == "memory":
        target = zarr.create_array({}, shape=ds.shape, dtype=ds.dtype, chunks=_zarr_chunks(ds.shape))
        da.store(ds.data, cast(Any, target), lock=False, scheduler=scheduler())
        return target
    base = Path(zarr_store_path) if zarr_store_path is not None else (source if source.is_dir() else source.parent)
    store = base / CACHE_FOLDER / f"{split_suffix(source)[0]}.zarr"
    store.parent.mkdir(parents=True, exist_ok=True)
    ds.cache(store, progress=False)
    return zarr.open_array(store, mode="r")


def _zarr_chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (1,) * (len(shape) - 2) + tuple(shape[-2:])


def imread(
    fname: str | PathLike[str] | Sequence[str | PathLike[str]],
    zarr_store: ZarrStore | None = None,
    zarr_store_path: str | PathLike[str] | None = None,
    reuse_disk_cache: bool = False,
    on_error: OnErrorLegacy = "raise",
    return_list: bool = False,
    recursive: bool = False,
    folder_stacks: bool = False,
    merge_folder_stacks: bool = False,
    merge_multiple_files_in_folder: bool = False,
    merge_along_axis: str = "T",
    zeropadding: bool = True,
    physicalsize_xyz: Any = None,
    pixelunit: str = "micron",
    collapse_ome_multifile_series: bool = True,
    verbose: bool = True,
) -> tuple[Any, dict[str, Any] | None] | tuple[list[Any], list[dict[str, Any]]]:
    """Read images as OMIO 0.3 does: ``(image, metadata)`` in TZCYX (loads the pixels).

    For lazy reading use :func:`omio.open` / :func:`omio.open_folder`, which this wraps.

    Parameters
    ----------
    fname
        A file, a folder (its readable images in natural order) or a list of them.
    zarr_store
        ``None``: numpy arrays. ``"memory"``: in-memory zarr arrays. ``"disk"``: zarr
        arrays in ``.omio_cache/<name>.zarr`` next to the input (or in ``zarr_store_path``);
        :func:`cleanup_omio_cache` removes them.
    zarr_store_path
        Folder for the ``.omio_cache`` of ``zarr_store="disk"``.
    reuse_disk_cache
        Accepted; a complete disk store of the same source is always re-used.
    on_error
        ``"raise"``, or ``"return_none"`` to get ``(None, None)`` for an unreadable input.
    return_list
        Return ``(images, metadatas)`` lists; for a file: every scene.
    recursive
        Also read the images of sub-folders (not ``omio_converted`` / ``.omio_cache``).
    folder_stacks, merge_folder_stacks
        ``fname`` is one folder of a stack (``TAG_01``); read every co-folder (``TAG_*``),
        merged along ``merge_along_axis`` with ``merge_folder_stacks``.
    merge_multiple_files_in_folder
        Merge the images of a folder (or list) along ``merge_along_axis``.
    merge_along_axis
        ``"T"``, ``"Z"`` or ``"C"``.
    zeropadding
        Pad differing axes with zeros when merging (``policy="pad"``); ``False`` requires
        them to match (``policy="strict"``).
    physicalsize_xyz, pixelunit
        ``(X, Y, Z)`` pixel sizes to state instead of the file's, in ``pixelunit``.
    collapse_ome_multifile_series
        Accepted; a multi-file OME-TIFF series is always read once, as one image.
    verbose
        Accepted (omio reports through exceptions and warnings).

    Returns
    -------
    tuple
        ``(image, metadata)`` for a file or a merge; ``(images, metadatas)`` lists for a
        folder, a list of inputs or ``return_list=True``. Missing physical sizes and time
        increments are ``None``.

    Raises
    ------
    FileNotFoundError
        When ``fname`` does not exist.
    ValueError
        For an unknown ``merge_along_axis``, ``zarr_store`` or ``on_error``.
    """
    check_zarr_store(zarr_store)
    if on_error not in ("raise", "return_none"):
        raise ValueError(f"on_error must be 'raise' or 'return_none', got {on_error!r}")
    try:
        datasets, sources, single = _open_legacy(
            fname,
            return_list=return_list,
            recursive=recursive,
            folder_stacks=folder_stacks,
            merge_folder_stacks=merge_folder_stacks,
            merge_multiple_files_in_folder=merge_multiple_files_in_folder,
            merge_along_axis=merge_along_axis,
            zeropadding=zeropadding,
            physicalsize_xyz=physicalsize_xyz,
            pixelunit=pixelunit,
        )
    except OmioError:
        if on_error == "raise":
            raise
        return None, None
    images = [_materialize(ds, src, zarr_store, zarr_store_path) for ds, src in zip(datasets, sources, strict=True)]
    metadatas = [legacy_metadata(ds) for ds in datasets]
    if single and len(images) == 1 and not return_list:
        return images[0], metadatas[0]
    return images, metadatas


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


def hello_world() -> None:
    """Print a greeting with omio's version (checks that omio imports)."""
    from omio import __version__

    print(f"Hello from omio! omio version: {__version__}")


def _legacy_read(
    fname: str | PathLike[str],
    opener: Callable[[Path], MicroscopyDataset],
    *,
    physicalsize_xyz: Any,
    pixelunit: str,
    zarr_store: str | None,
    zarr_store_path: Any,
    return_list: bool,
    caller: str,
) -> tuple[Any, dict[str, Any]] | tuple[list[Any], list[dict[str, Any]]]:
    from omio._api import scenes

    check_zarr_store(zarr_store)
    path = Path(fname)
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    datasets = [opener(path)]
    if return_list and not uses_sidecar(path):
        datasets += [MicroscopyDataset.from_source(_scene_source(path, i)) for i in range(1, len(scenes(path)))]
    elif not return_list:
        warn_scenes_left_out(datasets, caller=caller, hint=_LIST_HINT)
    if physicalsize_xyz is not None:
        sizes = {a: units.quantity(float(v), pixelunit) for a, v in zip("XYZ", physicalsize_xyz, strict=True)}
        datasets = [ds.with_metadata(physical_pixel_sizes=sizes) for ds in datasets]
    images = [_materialize(ds, path, zarr_store, zarr_store_path) for ds in datasets]
    metadatas = [legacy_metadata(ds) for ds in datasets]
    return (images, metadatas) if return_list else (images[0], metadatas[0])


def _scene_source(path: Path, scene: int) -> Any:
    from omio.readers import open_source

    return open_source(path, scene=scene)


def read_tif(
    fname: str | PathLike[str],
    physicalsize_xyz: Any = None,
    pixelunit: str = "micron",
    zarr_store: ZarrStore | None = None,
    zarr_store_path: str | PathLike[str] | None = None,
    return_list: bool = False,
    reuse_disk_cache: bool = False,
    verbose: bool = True,
) -> tuple[Any, dict[str, Any]] | tuple[list[Any], list[dict[str, Any]]]:
    """Read a TIFF / OME-TIFF / ImageJ / LSM file as OMIO 0.3 does (:meth:`MicroscopyDataset.from_tiff`).

    Parameters are those of :func:`imread`; ``return_list`` returns every series.
    """
    return _legacy_read(
        fname,
        MicroscopyDataset.from_tiff,
        physicalsize_xyz=physicalsize_xyz,
        pixelunit=pixelunit,
        zarr_store=zarr_store,
        zarr_store_path=zarr_store_path,
        return_list=return_list,
        caller="read_tif",
    )


def read_czi(
    fname: str | PathLike[str],
    physicalsize_xyz: Any = None,
    pixelunit: str = "micron",
    zarr_store: ZarrStore | None = None,
    zarr_store_path: str | PathLike[str] | None = None,
    return_list: bool = False,
    reuse_disk_cache: bool = False,
    verbose: bool = True,
) -> tuple[Any, dict[str, Any]] | tuple[list[Any], list[dict[str, Any]]]:
    """Read a CZI file as OMIO 0.3 does (:meth:`MicroscopyDataset.from_czi`).

    Parameters are those of :func:`imread`; ``return_list`` returns every scene.
    """
    return _legacy_read(
        fname,
        MicroscopyDataset.from_czi,
        physicalsize_xyz=physicalsize_xyz,
        pixelunit=pixelunit,
        zarr_store=zarr_store,
        zarr_store_path=zarr_store_path,
        return_list=return_list,
        caller="read_czi",
    )


def _open_thorlabs(path: Path) -> MicroscopyDataset:
    return open_with_sidecar(path) if uses_sidecar(path) else MicroscopyDataset.from_thorlabs_raw(path)


def read_thorlabs_raw(
    fname: str | PathLike[str],
    physicalsize_xyz: Any = None,
    pixelunit: str = "micron",
    zarr_store: ZarrStore | None = None,
    zarr_store_path: str | PathLike[str] | None = None,
    return_list: bool = False,
    reuse_disk_cache: bool = False,
    on_error: OnErrorLegacy = "raise",
    verbose: bool = True,
) -> tuple[Any, dict[str, Any] | None] | tuple[list[Any], list[dict[str, Any]]]:
    """Read a Thorlabs RAW acquisition as OMIO 0.3 does.

    With ``Experiment.xml`` next to the ``.raw`` file, :meth:`MicroscopyDataset.from_thorlabs_raw`
    reads it; without, the YAML sidecar written by :func:`create_thorlabs_raw_yaml`
    describes it. Other parameters are those of :func:`imread`.
    """
    if on_error not in ("raise", "return_none"):
        raise ValueError(f"on_error must be 'raise' or 'return_none', got {on_error!r}")
    try:
        return _legacy_read(
            fname,
            _open_thorlabs,
            physicalsize_xyz=physicalsize_xyz,
            pixelunit=pixelunit,
            zarr_store=zarr_store,
            zarr_store_path=zarr_store_path,
            return_list=return_list,
            caller="read_thorlabs_raw",
        )
    except OmioError:
        if on_error == "raise":
            raise
        return None, None


def cleanup_omio_cache(fname: str | PathLike[str], full_cleanup: bool = False, verbose: bool = True) -> None:
    """Remove the ``.omio_cache`` stores that ``zarr_store="disk"`` wrote.

    Parameters
    ----------
    fname
        A file (its store ``.omio_cache/<name>.zarr`` goes), a folder (its whole
        ``.omio_cache`` goes) or the ``.omio_cache`` folder itself.
    full_cleanup
        Remove the whole ``.omio_cache`` next to a file too.
    verbose
        Print what was removed.

    Raises
    ------
    ValueError
        When ``fname`` is neither an existing file nor folder.
    """
    import shutil

    path = Path(fname)
    if path.is_dir():
        target = path if path.name == CACHE_FOLDER else path / CACHE_FOLDER
    elif path.is_file():
        cache_dir = path.parent / CACHE_FOLDER
        target = cache_dir if full_cleanup else cache_dir / f"{split_suffix(path)[0]}.zarr"
    else:
        raise ValueError(f"cleanup_omio_cache: {path} is neither a file nor a folder")
    if target.is_dir():
        shutil.rmtree(target)
        if verbose:
            print(f"Removed {target}")


def _free_name(folder: Path, stem: str, overwrite: bool) -> Path:
    """``<stem>.ome.tif``, or OMIO 0.3's ``<stem> 1.ome.tif``, ``<stem> 2.ome.tif``... when taken."""
    target = folder / f"{stem}.ome.tif"
    n = 0
    while not overwrite and target.exists():
        n += 1
        target = folder / f"{stem} {n}.ome.tif"
    return target


def _stem(path: Path) -> str:
    return split_suffix(path)[0]


def _write_legacy(ds: MicroscopyDataset, target: Path, *, level: int, overwrite: bool) -> Path:
    if not 0 <= level <= 9:
        raise ValueError(f"compression_level must be 0-9, got {level}")
    target.parent.mkdir(parents=True, exist_ok=True)
    written = _write(ds, target, level=level, overwrite=overwrite)
    return target.parent / written.name  # spelled as given (relative stays relative), as OMIO 0.3 returns it


def imwrite(
    fname: str | PathLike[str],
    images: Any,
    metadatas: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
    compression_level: int = 3,
    relative_path: str | None = None,
    overwrite: bool = False,
    return_fnames: bool = False,
    indicate_merged_files: bool = False,
    verbose: bool = True,
) -> list[str] | None:
    """Write images with their metadata dicts as OME-TIFF, as OMIO 0.3 does (streamed from dask).

    Parameters
    ----------
    fname
        The output file (``.tif`` / ``.ome.tif`` become ``.ome.tif``). For a folder the
        name comes from ``metadata["Annotations"]["original_filename"]``.
    images
        A numpy, dask or zarr array, or a list of them; dims as in ``metadata["axes"]``.
    metadatas
        A metadata dict as :func:`imread` returns (or one per image); OMIO 0.3's flat
        ``Annotations`` (``{"Namespace": ..., key: value}``) and omio's
        ``{namespace: {key: value}}`` are both kept as OME MapAnnotations.
    compression_level
        zlib level 0-9 (0 = uncompressed).
    relative_path
        Write into this sub-folder of ``fname``'s folder.
    overwrite
        Replace existing files (never a source); otherwise ``<name> 1.ome.tif``... is used.
    return_fnames
        Return the paths written (as strings).
    indicate_merged_files
        Add ``_merged`` to the name.
    verbose
        Accepted.

    Returns
    -------
    list of str or None
        With ``return_fnames``, the files written; several images get ``_001``, ``_002``...

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "a.tif"
    >>> md = {"axes": "ZYX", "PhysicalSizeZ": 2.0}
    >>> [pathlib.Path(p).name for p in imwrite(out, np.zeros((4, 8, 8), "uint8"), md, return_fnames=True)]
    ['a.ome.tif']
    """
    image_list = list(images) if isinstance(images, (list, tuple)) else [images]
    if metadatas is None:
        md_list: list[Mapping[str, Any]] = [{} for _ in image_list]
    elif isinstance(metadatas, Mapping):
        md_list = [metadatas] * len(image_list) if len(image_list) > 1 else [metadatas]
    else:
        md_list = list(metadatas)
    if len(md_list) != len(image_list):
        raise ValueError(f"{len(image_list)} images but {len(md_list)} metadata dicts")
    target = Path(fname)
    folder = target if target.is_dir() else target.parent
    folder = folder / relative_path if relative_path else folder
    written = []
    for i, (image, md) in enumerate(zip(image_list, md_list, strict=True)):
        original = (
            (md.get("Annotations") or {}).get("original_filename")
            if isinstance(md.get("Annotations"), Mapping)
            else None
        )
        stem = _stem(Path(str(original))) if target.is_dir() else _stem(target)
        stem = stem or "image"
        stem += "_merged" if indicate_merged_files else ""
        stem += f"_{i + 1:03d}" if len(image_list) > 1 else ""
        ds = dataset_from_legacy(image, md)
        out = _free_name(folder, stem, overwrite)
        written.append(str(_write_legacy(ds, out, level=compression_level, overwrite=overwrite)))
    return written if return_fnames else None


def _convert_targets(
    datasets: Sequence[MicroscopyDataset], sources: Sequence[Path], relative_path: str | None, merged: bool
) -> list[tuple[MicroscopyDataset, Path, str]]:
    out = []
    for ds, src in zip(datasets, sources, strict=True):
        folder = src if src.is_dir() else src.parent
        stem = _stem(src) + ("_merged" if merged else "")
        out.append((ds, folder / relative_path if relative_path else folder, stem))
    return out


def imconvert(
    fname: str | PathLike[str] | Sequence[str | PathLike[str]],
    zarr_store: ZarrStore | None = None,
    reuse_disk_cache: bool = False,
    recursive: bool = False,
    folder_stacks: bool = False,
    merge_folder_stacks: bool = False,
    merge_multiple_files_in_folder: bool = False,
    merge_along_axis: str = "T",
    collapse_ome_multifile_series: bool = True,
    zeropadding: bool = True,
    physicalsize_xyz: Any = None,
    pixelunit: str = "micron",
    compression_level: int = 3,
    relative_path: str | None = CONVERTED_FOLDER,
    overwrite: bool = False,
    return_fnames: bool = False,
    cleanup_cache: bool = True,
    verbose: bool = True,
) -> list[str] | None:
    """Convert files or folders to OME-TIFF as OMIO 0.3 does, streaming (no image is loaded whole).

    Outputs go to ``<input folder>/omio_converted/<name>.ome.tif`` (``relative_path=None``:
    next to the input); a merge is named after its first file, ``<name>_merged.ome.tif``;
    a taken name gets `` 1``, `` 2``... unless ``overwrite``. The reading parameters are
    those of :func:`imread`; ``zarr_store``, ``reuse_disk_cache`` and ``cleanup_cache``
    are accepted (the conversion streams from the source, no cache is needed).

    Returns
    -------
    list of str or None
        With ``return_fnames``, the files written.
    """
    check_zarr_store(zarr_store)
    datasets, sources, _ = _open_legacy(
        fname,
        caller="imconvert",
        hint=_CONVERT_HINT,
        recursive=recursive,
        folder_stacks=folder_stacks,
        merge_folder_stacks=merge_folder_stacks,
        merge_multiple_files_in_folder=merge_multiple_files_in_folder,
        merge_along_axis=merge_along_axis,
        zeropadding=zeropadding,
        physicalsize_xyz=physicalsize_xyz,
        pixelunit=pixelunit,
    )
    merged = merge_multiple_files_in_folder or merge_folder_stacks
    written = [
        str(_write_legacy(ds, _free_name(folder, stem, overwrite), level=compression_level, overwrite=overwrite))
        for ds, folder, stem in _convert_targets(datasets, sources, relative_path, merged)
    ]
    return written if return_fnames else None


def open_in_napari(
    images: Any,
    metadatas: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    image_name: str | None = None,
    zarr_mode: str = "numpy",
    cache_folder_name: str = CACHE_FOLDER,
    axes_full: str = "TZCYX",
    viewer: Any = None,
    returns: bool = False,
    layer_names: str | Sequence[Any] | None = None,
    blending: str = "additive",
    fname: str | None = None,
    verbose: bool = True,
) -> tuple[Any, list[Any], list[Any], list[str]] | None:
    """Show images with their metadata dicts in napari (:meth:`MicroscopyDataset.view`, lazy).

    Parameters
    ----------
    images, metadatas
        An image and its metadata dict, or lists of them.
    image_name, fname
        The layer name prefix (``fname`` is OMIO 0.3's older name for it).
    viewer
        A napari viewer to add to (default: a new one).
    returns
        Return ``(viewer, layers, layer data, layer axes)``.
    zarr_mode, cache_folder_name, axes_full, layer_names, blending, verbose
        Accepted; layers are named from the channel names, scaled and blended by omio.

    Returns
    -------
    tuple or None
    """
    image_list = list(images) if isinstance(images, (list, tuple)) else [images]
    md_list = [metadatas] if isinstance(metadatas, Mapping) else list(metadatas)
    if len(md_list) != len(image_list):
        raise ValueError(f"{len(image_list)} images but {len(md_list)} metadata dicts")
    name = image_name or fname
    layers: list[Any] = []
    for image, md in zip(image_list, md_list, strict=True):
        ds = dataset_from_legacy(image, md)
        if name is not None:
            ds = ds.with_metadata(name=str(name))
        before = 0 if viewer is None else len(viewer.layers)
        viewer = ds.view(viewer)
        layers += list(viewer.layers)[before:]
    if not returns:
        return None
    return viewer, layers, [layer.data for layer in layers], ["".join(DIMS) for _ in layers]


version: str = __version__
"""omio's version (OMIO 0.3 exposes its own as ``omio.omio.version``)."""
