"""Writers: OME-TIFF (and OME-Zarr), streaming, atomic and collision-safe."""
