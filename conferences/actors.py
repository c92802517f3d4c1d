"""Who performs an action; every service function takes one, and the audit history keeps it."""

from dataclasses import dataclass
from typing import Literal

ActorKind = Literal["app", "staff", "engine", "system"]


@dataclass(frozen=True, slots=True)
class Actor:
    kind: ActorKind
    name: str  # app_id, staff username, engine node, or system task name
    api_key_prefix: str = ""

    @classmethod
    def app(cls, app_id: str, api_key_prefix: str = "") -> "Actor":
        return cls("app", app_id, api_key_prefix)

    @classmethod
    def staff(cls, username: str) -> "Actor":
        return cls("staff", username)

    @classmethod
    def engine(cls, node: str) -> "Actor":
        return cls("engine", node)

    @classmethod
    def system(cls, task: str) -> "Actor":
        return cls("system", task)
