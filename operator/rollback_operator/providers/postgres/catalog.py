"""SQL expressions over PostgreSQL's catalogs that more than one question about a restore asks:
which schema a catalog object lives in, and whether it belongs to an extension or to another
object. `scope` (what a restore replaces) and `carried` (the triggers it carries over) share
them, so both draw the line between inside and outside the restored schemas the same way.
"""

from __future__ import annotations


def namespace_of(classid: str, objid: str) -> str:
    """SQL: the schema oid of the catalog object (classid, objid), for the kinds that live in
    a schema (sub-objects of a table live in the table's); NULL for the others."""
    by_relation = {
        "pg_rewrite": "ev_class", "pg_trigger": "tgrelid", "pg_policy": "polrelid",
        "pg_attrdef": "adrelid",
    }  # fmt: skip
    own = {
        "pg_class": "relnamespace", "pg_proc": "pronamespace", "pg_type": "typnamespace",
        "pg_constraint": "connamespace", "pg_collation": "collnamespace",
        "pg_conversion": "connamespace", "pg_operator": "oprnamespace",
        "pg_opclass": "opcnamespace", "pg_opfamily": "opfnamespace",
        "pg_ts_config": "cfgnamespace", "pg_ts_dict": "dictnamespace",
        "pg_statistic_ext": "stxnamespace",
    }  # fmt: skip
    cases = [
        f"WHEN '{table}'::regclass THEN (SELECT {column} FROM {table} WHERE oid = {objid})"
        for table, column in own.items()
    ] + [
        f"WHEN '{table}'::regclass THEN (SELECT c.relnamespace FROM {table} x JOIN pg_class c"
        f" ON c.oid = x.{column} WHERE x.oid = {objid})"
        for table, column in by_relation.items()
    ]
    return f"CASE {classid} {' '.join(cases)} END"


def dependent(classid: str, objid: str, deptype: str) -> str:
    """SQL: whether the object depends on another with `deptype`: 'e', it belongs to an
    extension; 'i', it is part of another object (an identity column's sequence) and goes
    with it."""
    return (
        f"EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = {classid} AND e.objid = {objid}"
        f" AND e.deptype = '{deptype}')"
    )
