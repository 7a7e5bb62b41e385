"""`python -m sandbox.kube [--host H] [--port P] [--portfile PATH]`: serve an emulated
Kubernetes API (`sandbox.kube.emulator`) in its own process until SIGTERM or SIGINT.

`EmulatedCluster` (`sandbox.kube.cluster`) runs it this way, with `--port 0` and a portfile
through which it learns the port the emulator picked.
"""

import argparse
import asyncio
import os
import pathlib
import signal
from collections.abc import Sequence

from sandbox.kube.emulator import running_emulator


async def _serve_until_signalled(host: str, port: int, portfile: pathlib.Path | None) -> None:
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    async with running_emulator(host, port) as emulator:
        if portfile is not None:  # write, then rename: readers never see a half-written file
            partial = portfile.with_name(f"{portfile.name}.tmp")
            partial.write_text(f"{emulator.url.port}\n")
            os.replace(partial, portfile)
        print(f"Kubernetes API emulator listening on {emulator.url}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.kube",
        description="Serve an emulated Kubernetes API until SIGTERM or SIGINT.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks one")
    parser.add_argument("--portfile", type=pathlib.Path, help="write the bound port here")
    args = parser.parse_args(argv)
    asyncio.run(_serve_until_signalled(args.host, args.port, args.portfile))


if __name__ == "__main__":
    main()
