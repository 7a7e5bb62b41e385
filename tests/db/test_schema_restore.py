"""A restore leaves each restored schema exactly as the backup holds it, as the app's own role on
a Supabase-shaped database, and touches nothing else; what would stop it is found at planning.

Each test builds the shape (`tests/db/supabase.py`), takes a backup the way the platform does
(pg_dump of the whole database as the superuser), changes things since, restores `public`, and
compares what `public` holds with what it held when the backup was taken.
"""

from __future__ import annotations

import gzip
import subprocess

import pytest
from mypy_boto3_s3 import S3Client

from rollback_operator.providers.errors import PermanentError
from rollback_operator.providers.objectstore import layout
from sandbox.services.postgres import PG_BIN, SUPERUSER
from tests.db import supabase, world
from tests.db.world import PREFIX

KEY = "uid-s/restore-database/database"
NAMES = {
    "custom": "backup_latest.dump",
    "custom-gzip": "backup_latest.dump.gz",
    "plain": "backup_latest.sql",
    "plain-gzip": "backup_latest.sql.gz",  # the runbook's name
}
SINCE = """
INSERT INTO items (note) VALUES ('written-since');
CREATE TABLE public.audit (id serial PRIMARY KEY, what text);
CREATE VIEW public.recent_items AS SELECT * FROM public.items ORDER BY id DESC LIMIT 10;
CREATE FUNCTION public.count_items() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM items';
CREATE TYPE public.mood AS ENUM ('ok', 'sad');
ALTER TABLE public.items ADD COLUMN mood public.mood;
CREATE INDEX items_note ON public.items (note);
CREATE POLICY "anon reads items" ON public.items FOR SELECT TO anon USING (true);
GRANT SELECT ON public.items TO anon;
REVOKE SELECT ON public.profiles FROM anon;
ALTER TABLE public.profiles DISABLE ROW LEVEL SECURITY;
"""


def whole_dump(db: supabase.SupabaseDb, fmt: str) -> bytes:
    """The platform's backup: the whole database, by the superuser (auth included)."""
    return db.dump(fmt)


def public_dump(db: supabase.SupabaseDb, fmt: str) -> bytes:
    """A backup of `public` alone: custom, or plain SQL gzipped."""
    assert db.server.dir is not None
    options = ["-Fc"] if fmt == "custom" else ["-Fp"]
    command = [str(PG_BIN / "pg_dump"), *options, "-n", "public", "-h", str(db.server.dir)]
    command += ["-p", str(db.server.port), "-U", SUPERUSER, "-d", db.name]
    data = subprocess.run(command, capture_output=True, check=True).stdout
    return gzip.compress(data) if fmt == "plain-gzip" else data


@pytest.mark.parametrize("fmt", list(NAMES))
async def test_public_ends_exactly_as_the_backup_holds_it_and_auth_keeps_new_sign_ups(
    database: supabase.SupabaseDb, s3: S3Client, backups: str, fmt: str
) -> None:
    database.seed(["kept-1", "kept-2"])
    before = database.shape()
    world.put(s3, backups, PREFIX + NAMES[fmt], whole_dump(database, fmt))
    database.as_app(SINCE)
    database.sql("INSERT INTO auth.users (email) VALUES ('new-sign-up@example.com')")

    await world.pg_adapter(database, s3, backups).restore(NAMES[fmt], KEY)

    assert database.shape() == before
    assert database.notes() == ["kept-1", "kept-2"]
    assert "new-sign-up@example.com" in database.users()
    assert database.markers() == [KEY]


async def test_the_plan_names_the_schemas_the_restore_replaces(
    database: supabase.SupabaseDb, s3: S3Client, backups: str
) -> None:
    world.put(s3, backups, PREFIX + "b.dump", whole_dump(database, "custom"))

    plan = await world.pg_adapter(database, s3, backups).plan("b.dump")

    assert plan.schemas == ["public"]


@pytest.mark.parametrize("fmt", ["custom", "plain-gzip"])
async def test_by_default_every_schema_the_backup_holds_is_restored(
    database: supabase.SupabaseDb, s3: S3Client, backups: str, fmt: str
) -> None:
    database.seed(["kept"])
    before = database.shape()
    world.put(s3, backups, PREFIX + NAMES[fmt], public_dump(database, fmt))
    database.as_app(SINCE)
    adapter = world.pg_adapter(database, s3, backups, schemas=None)

    assert (await adapter.plan(NAMES[fmt])).schemas == ["public"]
    await adapter.restore(NAMES[fmt], KEY)

    assert database.shape() == before
    assert database.notes() == ["kept"]


async def test_a_default_scope_holding_schemas_of_other_roles_fails_the_plan_naming_them(
    database: supabase.SupabaseDb, s3: S3Client, backups: str
) -> None:
    """The whole database's backup holds `auth`, which the app's role does not own."""
    database.seed(["kept"])
    world.put(s3, backups, PREFIX + "b.dump", whole_dump(database, "custom"))
    database.seed(["new"])
    adapter = world.pg_adapter(database, s3, backups, schemas=None)

    with pytest.raises(PermanentError, match=r"cannot drop .*table auth\.users \(owner supabase"):
        await adapter.plan("b.dump")
    with pytest.raises(PermanentError, match="must be owner"):
        await adapter.restore("b.dump", KEY)

    assert database.notes() == ["new"]
    assert database.markers() == []


DEPENDENTS = {
    "view": (
        "CREATE SCHEMA analytics AUTHORIZATION app_owner;"
        " SET ROLE app_owner;"
        " CREATE VIEW analytics.item_counts AS SELECT count(*) FROM public.items;"
        " RESET ROLE;",
        r"view analytics\.item_counts depends on table items",
    ),
    "trigger calling another function of public in its WHEN": (
        "CREATE FUNCTION public.handle_new_user() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RETURN NEW; END $$;"
        " CREATE FUNCTION public.wanted(text) RETURNS boolean LANGUAGE sql IMMUTABLE"
        " AS $$ SELECT $1 NOT LIKE '%@test%' $$;"
        " ALTER FUNCTION public.handle_new_user() OWNER TO app_owner;"
        " ALTER FUNCTION public.wanted(text) OWNER TO app_owner;"
        " CREATE TRIGGER on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW"
        " WHEN (public.wanted(NEW.email)) EXECUTE FUNCTION public.handle_new_user();",
        r"trigger on_auth_user_created on table auth\.users depends on function "
        r"wanted\(text\)",
    ),
}


@pytest.mark.parametrize("dependent", list(DEPENDENTS))
@pytest.mark.parametrize("fmt", ["custom", "plain-gzip"])
async def test_an_object_outside_the_schemas_depending_on_a_restored_one_stops_it_unchanged(
    database: supabase.SupabaseDb, s3: S3Client, backups: str, dependent: str, fmt: str
) -> None:
    database.seed(["kept"])
    world.put(s3, backups, PREFIX + NAMES[fmt], whole_dump(database, fmt))
    database.seed(["new"])
    made, named = DEPENDENTS[dependent]
    database.sql(made)
    now = database.shape()
    adapter = world.pg_adapter(database, s3, backups)

    with pytest.raises(PermanentError, match=named + r".*nothing was changed"):
        await adapter.plan(NAMES[fmt])
    with pytest.raises(PermanentError, match=named):  # checked again in the transaction
        await adapter.restore(NAMES[fmt], KEY)

    assert database.shape() == now
    assert database.notes() == ["new"]
    assert database.markers() == []


async def test_the_safety_dump_taken_as_the_app_role_restores_as_that_role(
    database: supabase.SupabaseDb, s3: S3Client, backups: str
) -> None:
    database.seed(["yesterday"])
    world.put(s3, backups, PREFIX + "backup_20240101.dump", whole_dump(database, "custom"))
    database.seed(["today-1", "today-2"])
    database.as_app(SINCE)
    today = database.shape()
    adapter = world.pg_adapter(database, s3, backups, schemas=None)
    public_only = world.pg_adapter(database, s3, backups)

    safety = await adapter.safety_backup("uid-s/safety-backup/database")
    await public_only.restore("backup_20240101.dump", KEY)
    undo = await adapter.plan(safety.external_ids["safetyBackup"])
    await adapter.restore(undo.backup, "uid-u/restore-database/database")

    assert undo.schemas is not None
    assert "auth" not in undo.schemas  # the app cannot drop it
    assert "public" in undo.schemas
    assert database.shape() == today
    assert database.notes() == ["today-1", "today-2", "written-since"]


@pytest.mark.parametrize("fmt", ["custom", "plain-gzip"])
async def test_supabases_sign_up_trigger_is_carried_over_and_fires_after_the_restore(
    database: supabase.SupabaseDb, s3: S3Client, backups: str, fmt: str
) -> None:
    database.as_app(supabase.SIGN_UP)
    database.seed(["kept"])
    before = database.shape()
    world.put(s3, backups, PREFIX + NAMES[fmt], whole_dump(database, fmt))
    database.as_app(SINCE)
    triggers = database.outside_triggers()
    adapter = world.pg_adapter(database, s3, backups)

    plan = await adapter.plan(NAMES[fmt])
    done = await adapter.restore(NAMES[fmt], KEY)
    database.sql("INSERT INTO auth.users (email) VALUES ('after-restore@example.com')")

    assert len(triggers) == 1
    assert "on_auth_user_created AFTER INSERT ON auth.users FOR EACH ROW" in triggers[0]
    assert plan.carried_triggers == [  # a dry run shows it, and an approver sees it
        "trigger on_auth_user_created on auth.users (calls public.handle_new_user())"
    ]
    assert database.outside_triggers() == triggers
    assert database.shape() == before
    assert "after-restore" in database.profiles()  # the trigger fired
    assert done.message.endswith(
        ", carrying over trigger on_auth_user_created on auth.users"
        " (calls public.handle_new_user())"
    )
    assert database.notes() == ["kept"]
    assert database.markers() == [KEY]


AUDITED = """
CREATE SCHEMA audit;
CREATE TABLE audit.events (id serial PRIMARY KEY, what text);
CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql
  AS $$ BEGIN new.what := new.what || TG_ARGV[0]; RETURN new; END $$;
CREATE TRIGGER stamp_events BEFORE INSERT OR UPDATE OF what ON audit.events FOR EACH ROW
  WHEN (new.what IS NOT NULL) EXECUTE FUNCTION public.stamp('!');
ALTER TABLE audit.events {state} TRIGGER stamp_events;
COMMENT ON TRIGGER stamp_events ON audit.events IS 'adds a bang';
"""


STATES = {"ENABLE REPLICA": "R", "ENABLE ALWAYS": "A", "DISABLE": "D"}  # pg_trigger.tgenabled


@pytest.mark.parametrize(
    ("state", "fmt"),
    [("ENABLE REPLICA", "custom"), ("ENABLE ALWAYS", "plain-gzip"), ("DISABLE", "custom")],
)
async def test_a_carried_trigger_keeps_its_definition_enabled_state_and_comment(
    database: supabase.SupabaseDb, s3: S3Client, backups: str, state: str, fmt: str
) -> None:
    """On a table of the app's own outside the restored schemas, so its role may set them."""
    database.as_app(AUDITED.format(state=state))
    world.put(s3, backups, PREFIX + NAMES[fmt], whole_dump(database, fmt))
    database.as_app("INSERT INTO audit.events (what) VALUES ('since')")
    triggers = database.outside_triggers()

    await world.pg_adapter(database, s3, backups).restore(NAMES[fmt], KEY)

    assert database.outside_triggers() == triggers
    assert triggers == [
        "audit.events CREATE TRIGGER stamp_events BEFORE INSERT OR UPDATE OF what ON"
        " audit.events FOR EACH ROW WHEN ((new.what IS NOT NULL)) EXECUTE FUNCTION stamp('!')"
        f" enabled={STATES[state]} comment=adds a bang"
    ]
    assert database.markers() == [KEY]


@pytest.mark.parametrize("fmt", ["custom", "plain-gzip"])
async def test_a_backup_without_the_trigger_function_fails_plan_and_restore_changing_nothing(
    database: supabase.SupabaseDb, s3: S3Client, backups: str, fmt: str
) -> None:
    database.seed(["old"])
    world.put(s3, backups, PREFIX + NAMES[fmt], whole_dump(database, fmt))  # before sign-up
    database.as_app(supabase.SIGN_UP)
    database.seed(["new"])
    now, triggers = database.shape(), database.outside_triggers()
    adapter = world.pg_adapter(database, s3, backups)

    missing = (
        r"has no function public\.handle_new_user\(\), which trigger on_auth_user_created on"
        r" auth\.users calls.*nothing was changed"
    )
    with pytest.raises(PermanentError, match=f"backup {NAMES[fmt]} {missing}"):
        await adapter.plan(NAMES[fmt])
    with pytest.raises(PermanentError, match=missing):  # and in the transaction
        await adapter.restore(NAMES[fmt], KEY)
    database.sql("INSERT INTO auth.users (email) VALUES ('after-failure@example.com')")

    assert database.shape() == now
    assert database.outside_triggers() == triggers
    assert database.notes() == ["new"]
    assert "after-failure" in database.profiles()  # the trigger is still there and fires
    assert database.markers() == []


REFUSALS = {
    "no TRIGGER privilege": (
        f"REVOKE TRIGGER ON auth.users FROM {supabase.APP}",
        r"the TRIGGER privilege on auth\.users",
    ),
    "a state only the owner sets": (
        "ALTER TABLE auth.users ENABLE ALWAYS TRIGGER on_auth_user_created",
        r"ownership of auth\.users \(owner supabase_auth_admin\)",
    ),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
async def test_a_carried_trigger_the_role_cannot_create_again_fails_the_plan_naming_it(
    database: supabase.SupabaseDb, s3: S3Client, backups: str, refusal: str
) -> None:
    database.as_app(supabase.SIGN_UP)
    database.seed(["kept"])
    world.put(s3, backups, PREFIX + "b.dump", whole_dump(database, "custom"))
    made, lacks = REFUSALS[refusal]
    database.sql(made)
    database.seed(["new"])
    now, triggers = database.shape(), database.outside_triggers()
    adapter = world.pg_adapter(database, s3, backups)

    named = r"trigger on_auth_user_created on auth\.users \(calls public\.handle_new_user\(\)\)"
    with pytest.raises(PermanentError, match=f"{named} needs {lacks}.*nothing was changed"):
        await adapter.plan("b.dump")
    with pytest.raises(PermanentError, match="on_auth_user_created"):  # and in the transaction
        await adapter.restore("b.dump", KEY)

    assert database.shape() == now
    assert database.outside_triggers() == triggers
    assert database.notes() == ["new"]
    assert database.markers() == []


async def test_the_safety_dump_and_a_restore_point_carry_the_sign_up_trigger_too(
    database: supabase.SupabaseDb, s3: S3Client, backups: str
) -> None:
    database.as_app(supabase.SIGN_UP)
    database.seed(["yesterday"])
    world.put(s3, backups, PREFIX + "backup_20240101.dump", whole_dump(database, "custom"))
    database.seed(["today"])
    triggers = database.outside_triggers()
    adapter = world.pg_adapter(database, s3, backups, schemas=None)
    public_only = world.pg_adapter(database, s3, backups)
    point = await adapter.dump_point("before-deploy", "uid-p/dump/database")
    safety = await adapter.safety_backup("uid-s/safety-backup/database")

    await public_only.restore("backup_20240101.dump", KEY)
    assert database.notes() == ["yesterday"]
    undo = await adapter.plan(safety.external_ids["safetyBackup"])
    await adapter.restore(undo.backup, "uid-u/restore-database/database")
    assert database.notes() == ["today"]
    database.seed(["later"])
    await adapter.restore(point.backup, "uid-r/restore-database/database")
    database.sql("INSERT INTO auth.users (email) VALUES ('after-undo@example.com')")

    assert point.backup == layout.point_dump_name("before-deploy")
    assert database.notes() == ["today"]
    assert database.outside_triggers() == triggers
    assert "after-undo" in database.profiles()
