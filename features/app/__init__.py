"""App plumbing: a photo end to end, worker processes, the Dask cluster, annotated pictures."""
