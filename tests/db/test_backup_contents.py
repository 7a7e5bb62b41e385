"""What a backup holds, read without a server: an archive's table of contents, a plain dump's
headers, and a plain dump narrowed to the schemas being restored (chunk boundaries anywhere)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from rollback_operator.providers.postgres import contents

LISTING = """;
; Archive created at 2026-12-07 07:23:24 UTC
;
7; 2615 16385 SCHEMA - auth postgres
2; 3079 16409 EXTENSION - pgcrypto 
219; 1255 16405 FUNCTION public f(integer, text) postgres
216; 1259 16386 TABLE auth users supabase_auth_admin
3391; 0 16386 TABLE DATA auth users supabase_auth_admin
3393; 0 16392 TABLE DATA public profiles app_owner
3246; 2606 16400 FK CONSTRAINT public profiles profiles_user_id_fkey app_owner
3402; 0 0 ACL public TABLE profiles app_owner
2078; 826 16408 DEFAULT ACL public DEFAULT PRIVILEGES FOR TABLES app_owner
3; 2615 2200 SCHEMA - public pg_database_owner
"""  # noqa: W291 - an extension's owner is empty: its line ends with a space

PLAIN = b"""--
-- PostgreSQL database dump
--

\\restrict abc

SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);

DROP TABLE IF EXISTS public.items;
DROP TABLE IF EXISTS auth.users;
DROP SCHEMA IF EXISTS auth;
--
-- Name: auth; Type: SCHEMA; Schema: -; Owner: postgres
--

CREATE SCHEMA auth;

--
-- Name: users; Type: TABLE; Schema: auth; Owner: supabase_auth_admin
--

CREATE TABLE auth.users (id uuid);

--
-- Name: items; Type: TABLE; Schema: public; Owner: app_owner
--

CREATE TABLE public.items (note text);

--
-- Data for Name: users; Type: TABLE DATA; Schema: auth; Owner: supabase_auth_admin
--

COPY auth.users (id) FROM stdin;
-- Name: evil; Type: TABLE; Schema: public; Owner: x
\\.


--
-- Data for Name: items; Type: TABLE DATA; Schema: public; Owner: app_owner
--

COPY public.items (note) FROM stdin;
-- Name: not a header; Type: TABLE; Schema: auth; Owner: x
plain row
\\.


--
-- Name: DEFAULT PRIVILEGES FOR TABLES; Type: DEFAULT ACL; Schema: public; Owner: app_owner
--

ALTER DEFAULT PRIVILEGES FOR ROLE supabase_admin IN SCHEMA public GRANT ALL ON TABLES TO anon;


--
-- PostgreSQL database dump complete
--

\\unrestrict abc
"""


def test_an_archive_listing_names_each_entrys_kind_schema_and_name() -> None:
    entries = contents.archive_entries(LISTING)

    assert (entries[1].kind, entries[1].schema, entries[1].name) == ("EXTENSION", None, "pgcrypto")
    assert (entries[2].schema, entries[2].name) == ("public", "f(integer, text)")
    assert entries[4].kind == "TABLE DATA"
    assert (entries[6].kind, entries[6].name) == ("FK CONSTRAINT", "profiles profiles_user_id_fkey")
    assert entries[-1].name == "public"


def test_the_schemas_a_backup_holds_are_those_of_its_objects_and_those_it_creates() -> None:
    entries = contents.archive_entries(LISTING)

    assert contents.held_schemas(entries, skip="auth") == ["public"]
    assert contents.held_schemas(entries, skip="rollback_operator") == ["auth", "public"]


def test_the_use_list_holds_the_schemas_objects_but_no_schema_extension_or_default_acl() -> None:
    listed = contents.use_list(contents.archive_entries(LISTING), ["public"])

    assert listed == "219;\n3393;\n3246;\n3402;\n"


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
async def test_a_plain_dump_narrowed_to_public_keeps_its_settings_objects_and_rows(
    size: int,
) -> None:
    narrowed = b"".join([c async for c in contents.narrowed(_chunks(PLAIN, size), ["public"])])

    assert b"SET statement_timeout = 0;" in narrowed
    assert b"\\restrict abc" in narrowed
    assert b"\\unrestrict abc" in narrowed
    assert b"CREATE TABLE public.items" in narrowed
    assert b"plain row\n\\.\n" in narrowed
    assert b"-- Name: not a header" in narrowed  # a row of data, whatever it looks like
    for gone in (b"DROP ", b"auth", b"evil", b"DEFAULT PRIVILEGES FOR ROLE"):
        assert gone not in narrowed.replace(b"Schema: auth; Owner: x", b""), gone


@pytest.mark.parametrize("size", [1, 64, 1 << 20])
async def test_a_plain_dumps_headers_name_its_schemas_before_its_data(size: int) -> None:
    entries = [e async for e in contents.plain_headers(_chunks(PLAIN, size))]

    assert contents.held_schemas(entries, skip="rollback_operator") == ["auth", "public"]
    assert all(e.kind != "TABLE DATA" for e in entries)
