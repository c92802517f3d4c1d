"""The broker of `make run` when CELERY_BROKER_URL is unset: kombu's filesystem transport,
with messages written aside and renamed into place. The stock transport writes in place, and a
consumer in another process can take the file before it is written (the worker then dies on an
empty message)."""

import os
import uuid
from time import monotonic

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        # A leading dot keeps the reader from matching the file until it is complete.
        temporary = os.path.join(self.data_folder_out, f".{name}.part")
        with open(temporary, "wb") as file:
            file.write(str_to_bytes(dumps(payload)))
        os.replace(temporary, os.path.join(self.data_folder_out, name))


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES["folder"] = "project.broker:Transport"
