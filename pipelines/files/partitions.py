"""One dynamic partition per sighting of a statement file (connection, path, mtime, size).

The sensor adds a partition for every file the ledger has not seen and requests its run; a
backfill of many partitions lands a whole directory in one run.
"""

import dagster as dg

statement_file_partitions = dg.DynamicPartitionsDefinition(name="statement_files")
