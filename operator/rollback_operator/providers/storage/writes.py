"""The writes of a storage restore, each a blocking call meant for a worker thread.

Only two kinds of write exist, and neither removes data: a server-side copy (which adds a new
version on a versioned bucket) and a plain delete without a VersionId (which adds a delete
marker). No call here ever names a VersionId to delete. Objects above the single-copy limit
(5 GB) are copied in parts with UploadPartCopy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rollback_operator.providers.objectstore import s3api
from rollback_operator.providers.storage.diff import MARKER, Action, Kind, Source, multipart_etag

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef, HeadObjectOutputTypeDef

_KEPT_HEADERS = ("ContentType", "CacheControl", "ContentDisposition", "ContentEncoding",
                 "ContentLanguage")  # fmt: skip
MAX_PARTS = 10_000


@dataclass(frozen=True)
class CopyLimits:
    """Above `multipart_threshold` bytes a copy goes in parts of at least `part_size`."""

    multipart_threshold: int = 5 * 1024**3
    part_size: int = 512 * 1024**2


def apply(s3: S3Client, bucket: str, action: Action, limits: CopyLimits) -> Action:
    """Carry out `action` on `bucket`; returns what was done (a CHECK resolves either way)."""
    if action.kind is Kind.HIDE:
        s3api.guarded(f"hiding {action.key}", s3.delete_object, Bucket=bucket, Key=action.key)
        return action
    if action.source is None or action.kind is Kind.UNCHANGED:
        return action
    if action.kind is Kind.CHECK and already_copied(s3, bucket, action.key, action.source):
        return Action(Kind.UNCHANGED, action.key, action.source)
    copy(s3, bucket, action.key, action.source, limits)
    return Action(Kind.RESTORE, action.key, action.source, action.overwrites)


def already_copied(s3: S3Client, bucket: str, key: str, source: Source) -> bool:
    """Whether the live object is a copy of `source` made by an earlier restore."""
    head = s3api.guarded(f"reading {key}", s3.head_object, Bucket=bucket, Key=key)
    return head.get("Metadata", {}).get(MARKER) == source.bare_etag


def copy(s3: S3Client, bucket: str, key: str, source: Source, limits: CopyLimits) -> None:
    """Copy `source` to `key` server-side; marked when the copy's ETag will differ."""
    origin: CopySourceTypeDef = {"Bucket": source.bucket, "Key": source.key}
    if source.version_id is not None:
        origin["VersionId"] = source.version_id
    what = f"copying {source.key} to {key}"
    if source.size > limits.multipart_threshold:
        _copy_in_parts(s3, bucket, key, origin, source, limits)
    elif multipart_etag(source.etag):
        head = _head_source(s3, origin)
        s3api.guarded(
            what, s3.copy_object, Bucket=bucket, Key=key, CopySource=origin,
            MetadataDirective="REPLACE", **_marked(head, source),
        )  # fmt: skip
    else:
        s3api.guarded(what, s3.copy_object, Bucket=bucket, Key=key, CopySource=origin)


def _copy_in_parts(
    s3: S3Client,
    bucket: str,
    key: str,
    origin: CopySourceTypeDef,
    source: Source,
    limits: CopyLimits,
) -> None:
    what = f"copying {source.key} to {key} in parts"
    head = _head_source(s3, origin)
    upload = s3api.guarded(
        what, s3.create_multipart_upload, Bucket=bucket, Key=key, **_marked(head, source)
    )
    upload_id = upload["UploadId"]
    try:
        parts = []
        for number, (first, last) in enumerate(part_ranges(source.size, limits), start=1):
            done = s3api.guarded(
                what, s3.upload_part_copy, Bucket=bucket, Key=key, UploadId=upload_id,
                PartNumber=number, CopySource=origin, CopySourceRange=f"bytes={first}-{last}",
            )  # fmt: skip
            parts.append({"ETag": done["CopyPartResult"]["ETag"], "PartNumber": number})
        s3api.guarded(
            what, s3.complete_multipart_upload, Bucket=bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
        )  # fmt: skip
    except BaseException:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


def part_ranges(size: int, limits: CopyLimits) -> list[tuple[int, int]]:
    """Inclusive byte ranges of the parts, at most MAX_PARTS of them."""
    part = max(limits.part_size, -(-size // MAX_PARTS))
    return [(start, min(start + part, size) - 1) for start in range(0, size, part)]


def _head_source(s3: S3Client, origin: CopySourceTypeDef) -> HeadObjectOutputTypeDef:
    what, bucket, key = f"reading {origin['Key']}", origin["Bucket"], origin["Key"]
    if "VersionId" in origin:
        return s3api.guarded(
            what, s3.head_object, Bucket=bucket, Key=key, VersionId=origin["VersionId"]
        )
    return s3api.guarded(what, s3.head_object, Bucket=bucket, Key=key)


def _marked(head: HeadObjectOutputTypeDef, source: Source) -> dict[str, Any]:
    """The source's headers and metadata, plus the marker naming the source's ETag."""
    kept: dict[str, Any] = {name: head[name] for name in _KEPT_HEADERS if name in head}  # type: ignore[literal-required]
    kept["Metadata"] = {**head.get("Metadata", {}), MARKER: source.bare_etag}
    return kept
