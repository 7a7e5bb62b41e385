"""The object store as shared ground: the S3 client, the key layout, the report archive.

Both the database target (dumps live in a bucket) and the storage target use it, as every SaaS
adapter uses the HTTP layer, so it sits beside them rather than inside either.
"""
