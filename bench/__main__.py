"""`make bench`: the benchmarks. Traffic stays on 127.0.0.1; every loop is bounded.

`make bench` runs them all; `make bench BENCH=webhooks` (or playback, engine, admin) runs one.
"""

import os
import sys

from .setup import use_fresh_database

BENCHES = ("webhooks", "playback", "engine", "admin")
# Benches that keep a database of their own between runs (they set it up themselves).
OWN_DATABASE = ("admin",)


def main() -> None:
    chosen = [name for name in sys.argv[1:] if name in BENCHES] or list(BENCHES)
    os.environ["PLAYBACK_TIMEOUT_SECONDS"] = "3"  # the worker started by the playback bench inherits it
    if any(name not in OWN_DATABASE for name in chosen):
        use_fresh_database()
    for name in chosen:
        module = __import__(f"bench.{name}", fromlist=["main"])
        module.main()


if __name__ == "__main__":
    main()
