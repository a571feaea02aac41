"""The Postgres warehouse: where it runs, its schemas, and the raw loader."""
