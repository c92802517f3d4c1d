"""The project's settings, with the baseline endpoint of `make load` beside the API."""

from project.settings import *  # noqa: F403

ROOT_URLCONF = "bench.bare_write"
