"""Data preparation tools for tomogan_tf (synthetic CT datasets in the TomoGAN HDF5 layout)."""
