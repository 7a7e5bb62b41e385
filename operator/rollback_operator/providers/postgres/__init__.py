"""The database target: PostgreSQL dumped and restored with its own tools, backups in S3.

`database` is the adapter; `backups` finds and lists the backups in the bucket, `server` talks
to the server, `tools` runs pg_dump/pg_restore/psql, `dumps` reads a backup's format, `locks`
keeps a restore from waiting forever on a lock.
"""
