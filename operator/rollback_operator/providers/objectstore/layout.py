"""The one module that knows how backups are laid out in the object store.

- Database backups: `<prefix><name>`; `name` is what `to.database.backup` pins and the plan shows.
- Safety dumps: `<prefix>safety/<rollback>-<UTC time>.dump`, beside the backups so a person can
  pin one to roll a rollback back, but never chosen as "the newest backup".
- Restore point dumps: `<prefix>restore-points/<restore point>.dump`, beside the backups (a
  person can pin one), never chosen as "the newest backup" either.
- Dated storage backups: `<prefix>YYYYMMDD/<key>`, one folder per day; a restore point's copy of
  an unversioned bucket: `<prefix>YYYYMMDDTHHMMSSZ-<restore point>/<key>`, the same layout
  with the moment and the point's name in the folder.
- Reports and the deployment log: `reports/<namespace>/<name>/<created>-<uid8>.md` (the
  Rollback's creation time, `YYYYMMDDTHHMMSSZ`, and the start of its uid),
  `reports/deployment.log`, at the bucket's root whatever the prefix. GitOps and people delete
  and apply a Rollback again under one name: each of those runs keeps its own report, and
  listing the name's folder shows them oldest first.

A backup is an object whose name says it is a dump (`.dump`, `.sql`, `.backup`, `.pgdump`,
each optionally `.gz`) and that the operator did not write itself: with the prefix `""`, the
reports and the log share the folder with the dumps, and must never be taken for the newest one.

Everything here is pure string and time work, so the layout is tested without a server.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime

SAFETY_FOLDER = "safety/"
POINTS_FOLDER = "restore-points/"
SAFETY_SUFFIX = ".dump"
REPORTS_FOLDER = "reports/"
LOG_KEY = f"{REPORTS_FOLDER}deployment.log"
DUMP_SUFFIXES = (".dump", ".sql", ".backup", ".pgdump")
_STAMP = "%Y%m%dT%H%M%SZ"
_NAME_TIME = re.compile(
    r"(?<!\d)(?P<y>\d{4})-?(?P<m>\d{2})-?(?P<d>\d{2})"
    r"(?:[T_\-]?(?P<H>\d{2})[:\-]?(?P<M>\d{2})[:\-]?(?P<S>\d{2}))?(?!\d)"
)
_DAY_FOLDER = re.compile(r"^(\d{8})/$")
_POINT_FOLDER = re.compile(r"^\d{8}T\d{6}Z-[a-z0-9]([-a-z0-9.]*[a-z0-9])?/$")


def backup_key(prefix: str, name: str) -> str:
    """The object key of backup `name`."""
    return prefix + name


def backup_name(prefix: str, key: str) -> str:
    """The backup name of an object key under `prefix`."""
    return key[len(prefix) :] if key.startswith(prefix) else key


def is_safety_dump(name: str) -> bool:
    """Whether a backup name is one of our safety dumps (never the default choice)."""
    return name.startswith(SAFETY_FOLDER)


def point_dump_name(point: str) -> str:
    """The backup name of the dump of restore point `point`."""
    return f"{POINTS_FOLDER}{point}{SAFETY_SUFFIX}"


def is_point_dump(name: str) -> bool:
    """Whether a backup name is a restore point's dump (never the default choice)."""
    return name.startswith(POINTS_FOLDER)


def point_folder(prefix: str, when: datetime, point: str) -> str:
    """The key prefix of restore point `point`'s copy of the files, taken at `when`."""
    return f"{prefix}{when.astimezone(UTC).strftime(_STAMP)}-{point}/"


def is_point_folder(prefix: str, folder: str) -> bool:
    """Whether `folder` (ending in `/`) is a restore point's copy folder under `prefix`."""
    return folder.startswith(prefix) and bool(_POINT_FOLDER.match(folder[len(prefix) :]))


def report_folder(namespace: str, name: str) -> str:
    """The key prefix of every report of a Rollback named `namespace/name`."""
    return f"{REPORTS_FOLDER}{namespace}/{name}/"


def report_key(namespace: str, name: str, created: datetime, uid: str) -> str:
    """The object key of the report of the Rollback `namespace/name` created at `created` with
    `uid`: one a later Rollback of the same name never overwrites."""
    run = re.sub(r"[^A-Za-z0-9-]", "-", uid[:8]) or "no-uid"
    return f"{report_folder(namespace, name)}{created.astimezone(UTC).strftime(_STAMP)}-{run}.md"


def is_report(key: str) -> bool:
    """Whether an object key is one of the reports or the deployment log the operator keeps."""
    return key.startswith(REPORTS_FOLDER)


def is_dump_name(name: str) -> bool:
    """Whether a name says it is a database dump (`backup_latest.sql.gz`, `db.dump`)."""
    base = name.lower().removesuffix(".gz")
    return base.endswith(DUMP_SUFFIXES) and not base.endswith("/")


def is_backup(prefix: str, key: str) -> bool:
    """Whether an object under `prefix` can be the default backup: named as a dump, and none
    of the operator's own objects (safety dumps, restore point dumps, reports, the log)."""
    name = backup_name(prefix, key)
    own = is_safety_dump(name) or is_point_dump(name) or is_report(key)
    return is_dump_name(name) and not own


def rollback_of(idempotency_key: str) -> str:
    """The rollback part of a step key `<rollback uid>/<step>/<target>`, safe in a key."""
    head = idempotency_key.split("/", 1)[0]
    return re.sub(r"[^A-Za-z0-9._-]", "-", head) or "rollback"


def safety_prefix(prefix: str, rollback: str) -> str:
    """The key prefix under which every safety dump of `rollback` lies."""
    return f"{prefix}{SAFETY_FOLDER}{rollback}-"


def safety_key(prefix: str, rollback: str, when: datetime) -> str:
    """The key of a new safety dump of `rollback` taken at `when`."""
    return (
        f"{safety_prefix(prefix, rollback)}{when.astimezone(UTC).strftime(_STAMP)}{SAFETY_SUFFIX}"
    )


def name_time(name: str) -> tuple[datetime, bool] | None:
    """The last date (and time, if given) in a backup name, in UTC, and whether a time was given.

    `backup_20240101.sql.gz` -> 2024-01-01 00:00, no time; `db-2024-01-01T03-00-00Z.dump` ->
    03:00 with time. Names without a valid date give None.
    """
    found: tuple[datetime, bool] | None = None
    for match in _NAME_TIME.finditer(name):
        parts = match.groupdict()
        has_time = parts["H"] is not None
        y, m, d, hh, mm, ss = (int(parts[k] or 0) for k in ("y", "m", "d", "H", "M", "S"))
        try:
            found = (datetime(y, m, d, hh, mm, ss, tzinfo=UTC), has_time)
        except ValueError:
            continue
    return found


def taken_at(name: str, last_modified: datetime) -> datetime:
    """When a backup was taken: the time in its name, else its upload time.

    A name with only a date is trusted for the day: the upload time is used when it falls on
    that day (it is more precise), else midnight of the named day (a later copy of an old dump).
    """
    parsed = name_time(name)
    if parsed is None:
        return last_modified
    when, has_time = parsed
    if has_time or last_modified.astimezone(UTC).date() == when.date():
        return when if has_time else last_modified
    return when


def dated_folder(prefix: str, day: date) -> str:
    """The key prefix of the dated storage backup of `day`."""
    return f"{prefix}{day:%Y%m%d}/"


def folder_day(prefix: str, common_prefix: str) -> date | None:
    """The day of a `<prefix>YYYYMMDD/` folder, or None for anything else."""
    match = _DAY_FOLDER.match(backup_name(prefix, common_prefix))
    if match is None:
        return None
    try:
        return datetime.strptime(match.group(1), "%Y%m%d").date()
    except ValueError:
        return None


def folder_for(days: Iterable[date], as_of: datetime) -> date | None:
    """The newest dated folder at or before `as_of` (by its UTC day), or None."""
    limit = as_of.astimezone(UTC).date()
    eligible = [day for day in days if day <= limit]
    return max(eligible) if eligible else None
