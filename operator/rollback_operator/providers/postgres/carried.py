"""The triggers a restore carries over: a trigger on a table outside the restored schemas whose
only tie to them is its trigger function. Supabase's sign-up trigger is one (the quickstart's
`on_auth_user_created` on `auth.users`, calling `public.handle_new_user()`).

The restore drops every object in the restored schemas; dropping the function takes the trigger
along (a cascade, which needs no right on the table), and the backup brings the function back
but not the trigger, which a dump keeps with its table, outside. So inside the restore's one
transaction the prelude keeps each such trigger's definition (`pg_get_triggerdef`), its enabled
state and its comment (`capture_sql`), before anything is dropped; after the backup's objects
are restored, `recreate_sql` creates it again exactly. A backup without the function makes that
CREATE fail, and with it the whole restore: nothing changes; the plan finds it first in the
backup's table of contents or headers (`require_functions`). Creating it takes the TRIGGER
privilege on the table; a state other than the default, or a comment, takes its ownership (or
membership in its owner): `check` finds a missing one when the rollback is planned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import psycopg

from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.postgres import catalog, contents

PROVIDER = "postgres"
_SETTING = "rollback_operator.carried"  # the kept definitions, as JSON, for the transaction
# pg_trigger.tgenabled, as ALTER TABLE sets it; 'O' (ENABLE, the default) needs no statement
_STATES = {"D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def triggers_query(schemas: str) -> str:
    """SQL: the oids of the triggers a restore of the schema oids `schemas` (an oid[]
    expression) carries over: user triggers on tables outside, calling a function inside that
    no extension owns, that depend on nothing else inside. (Constraint triggers, and the
    clones a partitioned table gives its partitions, are not carried: they stay dependents.)"""
    inside = f"{catalog.namespace_of('d.refclassid', 'd.refobjid')} = ANY({schemas})"
    extensions = catalog.dependent("'pg_proc'::regclass", "f.oid", "e")
    return (
        "SELECT t.oid FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid"
        " JOIN pg_proc f ON f.oid = t.tgfoid"
        " WHERE NOT t.tgisinternal AND t.tgconstraint = 0 AND t.tgparentid = 0"
        f" AND NOT r.relnamespace = ANY({schemas}) AND f.pronamespace = ANY({schemas})"
        f" AND NOT {extensions}"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_trigger'::regclass"
        " AND d.objid = t.oid AND d.deptype = 'n'"
        " AND NOT (d.refclassid = 'pg_proc'::regclass AND d.refobjid = t.tgfoid)"
        f" AND {inside})"
    )


@dataclass(frozen=True)
class Carried:
    """A trigger a restore carries over, and what the role lacks to create it again."""

    name: str
    table: str
    function: str
    lacks: str | None
    held_as: tuple[str, str] = ("", "")  # (schema, name) of its function in a dump's entries

    def describe(self) -> str:
        """How a plan names it."""
        return f"trigger {self.name} on {self.table} (calls {self.function})"


def _described_query(schemas: str) -> str:
    """SQL: (name, table, function, what the role lacks or NULL, the function's schema and
    name) of each carried trigger."""
    lacks = (
        "CASE WHEN NOT has_table_privilege(t.tgrelid, 'TRIGGER')"
        " THEN 'the TRIGGER privilege on ' || t.tgrelid::regclass::text"
        " WHEN (t.tgenabled <> 'O' OR obj_description(t.oid, 'pg_trigger') IS NOT NULL)"
        " AND NOT pg_has_role(r.relowner, 'MEMBER')"
        " THEN 'ownership of ' || t.tgrelid::regclass::text || ' (owner '"
        " || pg_get_userbyid(r.relowner) || '), to set its enabled state or comment' END"
    )
    return (
        "SELECT t.tgname, (pg_identify_object('pg_class'::regclass, t.tgrelid, 0)).identity,"
        " (pg_identify_object('pg_proc'::regclass, t.tgfoid, 0)).identity,"
        f" {lacks}, f.pronamespace::regnamespace::text, f.proname"
        " FROM pg_trigger t JOIN pg_class r ON r.oid = t.tgrelid"
        " JOIN pg_proc f ON f.oid = t.tgfoid"
        f" WHERE t.oid IN ({triggers_query(schemas)}) ORDER BY 2, 1"
    )


async def found(
    conn: psycopg.AsyncConnection[tuple[object, ...]], schemas: str, params: Mapping[str, object]
) -> list[Carried]:
    """The triggers a restore of `schemas` (an oid[] expression reading `params`) carries."""
    rows = await (await conn.execute(_described_query(schemas), params)).fetchall()
    return [
        Carried(str(n), str(t), str(f), None if x is None else str(x), (str(s), str(p)))
        for n, t, f, x, s, p in rows
    ]


def check(carried: list[Carried], schemas: list[str]) -> None:
    """PermanentError naming a carried trigger the role could not create again, and why."""
    refused = [trigger for trigger in carried if trigger.lacks]
    if not refused:
        return
    shown = "; ".join(f"{t.describe()} needs {t.lacks}" for t in refused)
    raise PermanentError(
        f"restoring schemas {', '.join(schemas)} carries over the triggers outside them that "
        f"call their functions, but the database role cannot create them again: {shown[:600]}."
        " Grant the role what it lacks (GRANT TRIGGER ON <table> TO <role>, for the first), or"
        " drop the trigger; nothing was changed",
        provider=PROVIDER,
    )


def require_functions(
    carried: list[Carried], entries: Iterable[contents.Entry], backup: str
) -> None:
    """PermanentError naming each carried trigger whose function the backup (its `entries`)
    lacks: creating it again would fail the restore. (A trigger function takes no arguments,
    so a dump names it `name()`.)"""
    held = {(e.schema, e.name) for e in entries if e.kind == "FUNCTION"}
    missing = [t for t in carried if (t.held_as[0], f"{t.held_as[1]}()") not in held]
    if not missing:
        return
    shown = "; ".join(f"{t.function}, which trigger {t.name} on {t.table} calls" for t in missing)
    raise PermanentError(
        f"backup {backup} has no function {shown[:600]} (a trigger outside the restored schemas,"
        " which the restore carries over): restoring it would fail. Pick a backup that holds"
        " the function, or drop the trigger; nothing was changed",
        provider=PROVIDER,
    )


def capture_sql(names: str, schemas: str) -> str:
    """A DO statement keeping each carried trigger's definition, enabled state and comment in
    the transaction's setting `_SETTING`, written out with every name schema-qualified (an
    empty search_path), so it means the same after the restore. `names` initialises the
    restored schemas' names, which `schemas` (their oid[] expression) reads."""
    kept = (
        "json_build_object('name', t.tgname, 'table', t.tgrelid::regclass::text,"
        " 'function', t.tgfoid::regprocedure::text, 'definition', pg_get_triggerdef(t.oid),"
        " 'enabled', t.tgenabled, 'comment', obj_description(t.oid, 'pg_trigger'))"
    )
    return f"""DO $rollback_capture$
DECLARE
  names text[] := {names};
  saved text := current_setting('search_path');
BEGIN
  PERFORM set_config('jit', 'off', true);
  PERFORM set_config('search_path', '', true);
  PERFORM set_config('{_SETTING}', coalesce((SELECT json_agg({kept} ORDER BY t.oid)
    FROM pg_trigger t WHERE t.oid IN ({triggers_query(schemas)})), '[]')::text, true);
  PERFORM set_config('search_path', saved, true);
END
$rollback_capture$;
"""


def recreate_sql() -> bytes:
    """The DO statement, after the backup's objects, that creates each kept trigger again with
    its enabled state and comment; failing (and so the restore) naming the trigger, and the
    function when the backup lacks it."""
    states = " ".join(f"WHEN '{code}' THEN '{words}'" for code, words in _STATES.items())
    body = f"""
DECLARE
  kept json;
  state text;
BEGIN
  FOR kept IN SELECT json_array_elements(
      coalesce(nullif(current_setting('{_SETTING}', true), ''), '[]')::json) LOOP
    state := CASE kept->>'enabled' {states} END;
    BEGIN
      EXECUTE kept->>'definition';
      IF state IS NOT NULL THEN
        EXECUTE format('ALTER TABLE %s %s TRIGGER %I', kept->>'table', state, kept->>'name');
      END IF;
      IF kept->>'comment' IS NOT NULL THEN
        EXECUTE format('COMMENT ON TRIGGER %I ON %s IS %L', kept->>'name', kept->>'table',
          kept->>'comment');
      END IF;
    EXCEPTION
      WHEN undefined_function THEN
        RAISE EXCEPTION 'the backup has no function %, which trigger % on % calls (a trigger'
          ' outside the restored schemas, which the restore carries over): restore a backup'
          ' that holds the function, or drop the trigger; nothing was changed',
          kept->>'function', kept->>'name', kept->>'table';
      WHEN OTHERS THEN
        RAISE EXCEPTION 'could not create trigger % on % again as it was (it calls %): %;'
          ' nothing was changed', kept->>'name', kept->>'table', kept->>'function', SQLERRM;
    END;
  END LOOP;
END"""
    return f"\nDO $rollback_recreate${body}\n$rollback_recreate$;\n".encode()
