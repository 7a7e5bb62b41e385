"""What a restore of some schemas replaces on the server, and what would stop it.

A restored schema must end exactly as the backup holds it: `pg_restore --clean` drops only the
objects the backup names, so a table or view made since survives, and a view made since on a
restored table makes the DROP fail after traffic is already stopped. So the restore drops every
object in the restored schemas itself (the schemas stay: on Supabase the app's role owns its
tables in `public`, not `public`), then creates the backup's objects. Objects an extension owns
are the extension's, not the schema's: they are left alone.

Before that, two things must hold, checked when the rollback is planned (so a dry run shows
them): no object outside the restored schemas depends on one inside (the drop would take it
along: a view in `analytics` on a `public` table), and the app's role may drop every object
inside. A trigger outside whose only tie is its function inside (Supabase's sign-up trigger on
`auth.users`) is no such object: the restore carries it over (`carried`), if the role could
create it again. The prelude (`prelude_sql`), the first statements of the restore's one
transaction, keeps those triggers, checks the first rule again and then drops (a DROP the role
may not make fails there), so a refusal at any point changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.postgres import carried, catalog, server

PROVIDER = "postgres"
SCHEMAS_VARIABLE = "rollback_schemas"  # the psql variable the prelude reads its schemas from
_SETTING = "rollback_operator.schemas"
_SHOWN = 10
# These catalog queries are cheap, but wide enough that the JIT compiler would spend seconds on
# them (4.6 s of 4.7 measured on PostgreSQL 15): it is off for them.
_NO_JIT = "SET jit = off"


def dependents_query(schemas: str) -> str:
    """SQL: (dependent, what it depends on) for each object outside the schema oids `schemas`
    (an oid[] expression) that depends on an object inside them, but the triggers the restore
    carries over (`carried`)."""
    inside = f"{catalog.namespace_of('d.refclassid', 'd.refobjid')} = ANY({schemas})"
    outside = f"{catalog.namespace_of('d.classid', 'd.objid')}"
    return (
        "SELECT DISTINCT pg_describe_object(d.classid, d.objid, d.objsubid),"
        " pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)"
        f" FROM pg_depend d WHERE d.deptype = 'n' AND {inside}"
        f" AND NOT {catalog.dependent('d.refclassid', 'd.refobjid', 'e')}"
        f" AND ({outside} IS NULL OR NOT {outside} = ANY({schemas}))"
        " AND NOT (d.classid = 'pg_trigger'::regclass"
        f" AND d.objid IN ({carried.triggers_query(schemas)}))"
        " ORDER BY 1, 2"
    )


def contents_query(schemas: str) -> str:
    """SQL: (kind, identity, owner oid) of every object in the schema oids `schemas` that a
    restore drops: relations, routines, types, collations and statistics, extensions' own
    excepted. A kind is what follows DROP."""
    kinds = (
        "CASE WHEN i.type IN ('function', 'procedure', 'aggregate') THEN 'ROUTINE'"
        " WHEN i.type = 'composite type' THEN 'TYPE'"
        " WHEN i.type = 'statistics object' THEN 'STATISTICS' ELSE upper(i.type) END"
    )
    sources = (
        "SELECT 'pg_class'::regclass, oid, relowner FROM pg_class WHERE relnamespace = ANY(s)"
        " AND relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c')"
        " UNION ALL SELECT 'pg_proc'::regclass, oid, proowner FROM pg_proc"
        " WHERE pronamespace = ANY(s)"
        " UNION ALL SELECT 'pg_type'::regclass, t.oid, t.typowner FROM pg_type t"
        " WHERE t.typnamespace = ANY(s) AND t.typrelid = 0 AND t.typtype IN ('e', 'd', 'r')"
        " UNION ALL SELECT 'pg_collation'::regclass, oid, collowner FROM pg_collation"
        " WHERE collnamespace = ANY(s)"
        " UNION ALL SELECT 'pg_statistic_ext'::regclass, oid, stxowner FROM pg_statistic_ext"
        " WHERE stxnamespace = ANY(s)"
    )
    return (
        f"SELECT {kinds}, i.identity, o.owner FROM (SELECT {schemas} AS s) params,"
        f" LATERAL ({sources}) AS o(classid, objid, owner),"
        " LATERAL pg_identify_object(o.classid, o.objid, 0) AS i"
        f" WHERE NOT {catalog.dependent('o.classid', 'o.objid', 'e')}"
        f" AND NOT {catalog.dependent('o.classid', 'o.objid', 'i')}"
        " ORDER BY 2"
    )


def undroppable_query(schemas: str) -> str:
    """SQL: (kind, identity, owner) of the objects in `schemas` the session's role cannot drop
    (it neither owns them nor is a member of their owner)."""
    return (
        f"SELECT kind, identity, pg_get_userbyid(owner) FROM ({contents_query(schemas)})"
        " AS c(kind, identity, owner) WHERE NOT pg_has_role(current_user, owner, 'MEMBER')"
    )


_NAMESPACES = "ARRAY(SELECT oid FROM pg_namespace WHERE nspname = ANY({names}))"


async def check(dsn: server.Dsn, schemas: Sequence[str]) -> list[carried.Carried]:
    """The triggers outside that a restore of `schemas` carries over (`carried`);
    PermanentError naming what keeps it from running: objects outside that depend on objects
    inside, objects inside the role cannot drop, or a carried trigger the role could not
    create again."""
    oids, params = _NAMESPACES.format(names="%(names)s"), {"names": list(schemas)}
    async with await server.connect(dsn) as conn:
        try:
            await conn.execute(_NO_JIT)
            found = await conn.execute(dependents_query(oids), params)
            dependents = [(str(a), str(b)) for a, b in await found.fetchall()]
            found = await conn.execute(undroppable_query(oids), params)
            foreign = [(str(k), str(i), str(o)) for k, i, o in await found.fetchall()]
            triggers = await carried.found(conn, oids, params)
        except psycopg.Error as error:
            raise server.classify(error, dsn) from None
    if dependents:
        raise PermanentError(_dependents_message(dependents, schemas), provider=PROVIDER)
    if foreign:
        raise PermanentError(_foreign_message(foreign, schemas), provider=PROVIDER)
    carried.check(triggers, list(schemas))
    return triggers


async def carried_over(dsn: server.Dsn, schemas: Sequence[str]) -> list[carried.Carried]:
    """The triggers outside `schemas` that a restore of them carries over (after one, those
    it carried)."""
    oids, params = _NAMESPACES.format(names="%(names)s"), {"names": list(schemas)}
    async with await server.connect(dsn) as conn:
        try:
            await conn.execute(_NO_JIT)
            return await carried.found(conn, oids, params)
        except psycopg.Error as error:
            raise server.classify(error, dsn) from None


def _dependents_message(found: list[tuple[str, str]], schemas: Sequence[str]) -> str:
    shown = "; ".join(f"{a} depends on {b}" for a, b in found[:_SHOWN])
    more = f" (and {len(found) - _SHOWN} more)" if len(found) > _SHOWN else ""
    return (
        f"restoring schemas {', '.join(schemas)} would drop objects outside them: {shown}{more}."
        " Drop or change those objects, or add their schema to targets.database.postgres."
        "schemas; nothing was changed"
    )


def _foreign_message(found: list[tuple[str, str, str]], schemas: Sequence[str]) -> str:
    shown = "; ".join(f"{kind.lower()} {ident} (owner {owner})" for kind, ident, owner in found)
    return (
        f"the database role cannot drop objects in the restored schemas {', '.join(schemas)}: "
        f"{shown[:600]}. Restore only schemas whose objects it owns "
        "(targets.database.postgres.schemas); nothing was changed"
    )


async def user_schemas(dsn: server.Dsn) -> list[tuple[str, bool]]:
    """Each user schema (not the system's or the marker's) and whether the role may drop every
    object in it (so a restore can replace it)."""
    query = (
        "SELECT n.nspname, has_schema_privilege(n.oid, 'USAGE') AND NOT EXISTS ("
        + undroppable_query("ARRAY[n.oid]")
        + ") FROM pg_namespace n WHERE n.nspname NOT LIKE 'pg\\_%%'"
        " AND n.nspname NOT IN ('information_schema', %(marker)s) ORDER BY 1"
    )
    async with await server.connect(dsn) as conn:
        try:
            await conn.execute(_NO_JIT)
            found = await conn.execute(query, {"marker": server.SCHEMA})
            return [(str(name), bool(ok)) for name, ok in await found.fetchall()]
        except psycopg.Error as error:
            raise server.classify(error, dsn) from None


def prelude_sql() -> bytes:
    """The restore's first statements, inside its transaction: keep the triggers it carries
    over (`carried`), refuse (raising, so nothing changes) when `check` would find dependents,
    create a restored schema the database lacks, then drop every object in the restored
    schemas. The schemas arrive as JSON in the psql variable `SCHEMAS_VARIABLE` (psql quotes
    it), so no name reaches the SQL text."""
    oids = _NAMESPACES.format(names="names")
    names = f"ARRAY(SELECT json_array_elements_text(current_setting('{_SETTING}')::json))"
    body = f"""
DECLARE
  names text[] := {names};
  found text;
  missing text;
  drops text[];
  statement text;
BEGIN
  PERFORM set_config('jit', 'off', true);
  SELECT string_agg(format('%s depends on %s', a, b), '; ') INTO found
    FROM ({dependents_query(oids)}) AS d(a, b);
  IF found IS NOT NULL THEN
    RAISE EXCEPTION 'restoring schemas % would drop objects outside them: %; nothing was changed',
      array_to_string(names, ', '), found;
  END IF;
  FOR missing IN SELECT unnest(names) EXCEPT SELECT nspname FROM pg_namespace LOOP
    EXECUTE format('CREATE SCHEMA %I', missing);
  END LOOP;
  drops := ARRAY(SELECT format('DROP %s IF EXISTS %s CASCADE', kind, identity)
    FROM ({contents_query(oids)}) AS c(kind, identity, owner));
  FOREACH statement IN ARRAY drops LOOP
    EXECUTE statement;
  END LOOP;
END"""
    return (
        "\nSET LOCAL client_min_messages = warning;\n"  # the drops' cascade notices
        f"SELECT set_config('{_SETTING}', :'{SCHEMAS_VARIABLE}', true);\n"
        f"{carried.capture_sql(names, oids)}"
        f"DO $rollback_prelude${body}\n$rollback_prelude$;\n"
    ).encode()
