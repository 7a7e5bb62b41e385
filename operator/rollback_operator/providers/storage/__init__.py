"""The storage target: an S3 bucket restored to a point in time without deleting a version.

`s3` is the adapter; `diff` decides what each key needs, `spool` keeps that work on disk,
`writes` carries it out, `dated` reads dated backup folders instead of versions.
"""
