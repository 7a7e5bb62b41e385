"""Run one benchmark and put what it printed into docs/benchmarks.md: `make bench` regenerates
every figure there.

Why this module exists: the analysis in docs/benchmarks.md is written by people, but its figures
must come from a run, not from memory. Each benchmark's section ends with a block between
`<!-- latest:NAME -->` markers that this script replaces with the benchmark's own output, the
command and the date; the block is added at the end of the section (the one whose heading names
`bench.NAME`) the first time. A run on a named test bed (`-- --bed apiserver|emulator`) has a
block of its own, `latest:NAME-BED`, so a section shows both beds' figures side by side.

    python -m bench.record quick_overhead [-- --runs 20] [--bed emulator]
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"


def block(name: str, command: str, output: str) -> str:
    """The marked block for one run."""
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"<!-- latest:{name} -->\n"
        f"Latest run ({when}, `{command}`):\n\n"
        f"```text\n{output.rstrip()}\n```\n"
        f"<!-- /latest:{name} -->"
    )


def key_of(name: str, args: list[str]) -> str:
    """The block's name: the benchmark's, with the bed it ran on when the arguments name one."""
    bed = args[args.index("--bed") + 1] if "--bed" in args[:-1] else None
    return f"{name}-{bed}" if bed else name


def place(doc: str, name: str, new: str, key: str | None = None) -> str:
    """`doc` with the block `key` (default: `name`) replaced, or added at the end of the section
    of benchmark `name`."""
    key = key or name
    marked = re.compile(rf"<!-- latest:{key} -->.*?<!-- /latest:{key} -->", re.S)
    if marked.search(doc):
        return marked.sub(lambda _: new, doc, count=1)
    heading = re.search(rf"^## .*`python -m bench\.{name}\b.*$", doc, re.M)
    if heading is None:
        raise SystemExit(f"docs/benchmarks.md has no section for bench.{name}")
    following = re.search(r"^## ", doc[heading.end() :], re.M)
    end = heading.end() + following.start() if following else len(doc)
    return doc[:end].rstrip() + "\n\n" + new + "\n\n" + doc[end:].lstrip("\n")


def main(argv: list[str]) -> int:
    """Run `bench.<name>` with the arguments after `--`, echo its output, record it."""
    if not argv:
        raise SystemExit(__doc__)
    name, rest = argv[0], argv[1:]
    args = rest[1:] if rest[:1] == ["--"] else rest
    command = [sys.executable, "-m", f"bench.{name}", *args]
    shown = " ".join(["python", "-m", f"bench.{name}", *args])
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        print(f"bench.{name} failed (exit {done.returncode}); docs/benchmarks.md unchanged")
        return done.returncode
    key = key_of(name, args)
    DOC.write_text(place(DOC.read_text(), name, block(key, shown, done.stdout), key))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
