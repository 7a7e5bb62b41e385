"""`make bench` writes each benchmark's output into its section of docs/benchmarks.md."""

from __future__ import annotations

import pytest

from bench.record import block, key_of, place

DOC = """# Benchmarks

## Overhead (issue 2) — `python -m bench.quick_overhead`

Analysis written by people.

## Load (issue 8) — `python -m bench.load [--rollbacks 100]`

More analysis.
"""


def test_the_first_run_adds_its_block_at_the_end_of_its_own_section() -> None:
    out = place(DOC, "quick_overhead", block("quick_overhead", "python -m bench.x", "median 1 ms"))
    overhead, load = out.split("## Load")
    assert "Analysis written by people.\n\n<!-- latest:quick_overhead -->" in overhead
    assert "median 1 ms" in overhead
    assert "latest" not in load


def test_a_later_run_replaces_only_its_own_block() -> None:
    once = place(DOC, "load", block("load", "python -m bench.load", "all done in 80 s"))
    twice = place(once, "load", block("load", "python -m bench.load", "all done in 60 s"))
    assert "all done in 60 s" in twice
    assert "all done in 80 s" not in twice
    assert twice.count("<!-- latest:load -->") == 1
    assert "More analysis." in twice


def test_a_benchmark_without_a_section_is_refused() -> None:
    with pytest.raises(SystemExit, match=r"no section for bench\.db_restore"):
        place(DOC, "db_restore", block("db_restore", "x", "y"))


def test_each_bed_keeps_a_block_of_its_own_in_the_same_section() -> None:
    key = key_of("load", ["--rollbacks", "10", "--bed", "emulator"])
    out = place(DOC, "load", block(key, "python -m bench.load", "emulated: 60 s"), key)
    real = key_of("load", ["--bed", "apiserver"])
    both = place(out, "load", block(real, "python -m bench.load", "real: 20 s"), real)
    _, load = both.split("## Load")
    assert "emulated: 60 s" in load
    assert "real: 20 s" in load
    assert load.index("latest:load-emulator") < load.index("latest:load-apiserver")
    assert key_of("db_restore", ["--rounds", "5"]) == "db_restore"
