"""`make bench`: the benchmarks. Traffic stays on 127.0.0.1; every loop is bounded.

`make bench` runs them all; `make bench BENCH=webhooks` (or playback, engine) runs one.
"""

import os
import sys

from .setup import use_fresh_database

BENCHES = ("webhooks", "playback", "engine")


def main() -> None:
    chosen = [name for name in sys.argv[1:] if name in BENCHES] or list(BENCHES)
    os.environ["PLAYBACK_TIMEOUT_SECONDS"] = "3"  # the worker started by the playback bench inherits it
    use_fresh_database()
    for name in chosen:
        module = __import__(f"bench.{name}", fromlist=["main"])
        module.main()


if __name__ == "__main__":
    main()
