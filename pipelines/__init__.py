"""The Dagster code location: assets, checks, jobs; assembled in `pipelines.definitions`."""
