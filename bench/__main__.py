"""`make bench`: the benchmarks. Traffic stays on 127.0.0.1; every loop is bounded."""

from . import webhooks


def main() -> None:
    webhooks.main()


if __name__ == "__main__":
    main()
