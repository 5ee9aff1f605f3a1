"""Infrastructure: the on-disk cache, the results folder and the notebooks' recorded checks."""
