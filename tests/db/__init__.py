"""The database and storage adapters against a real PostgreSQL 15 and a real S3 API server."""
