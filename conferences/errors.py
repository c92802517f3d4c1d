"""Domain errors: each carries the spec's `code`, a message for humans and a detail object.

One exception handler (conferences.api.errors) turns them, and every other error, into
{"success": false, "error", "code", "detail"}.
"""


class ServiceError(Exception):
    status = 400
    code = "invalid"
    message = "Invalid request"

    def __init__(self, message: str | None = None, *, detail: dict | None = None, code: str | None = None):
        self.message = message or self.message
        self.detail = detail
        if code:
            self.code = code
        super().__init__(self.message)


class NotFound(ServiceError):
    status = 404
    code = "not_found"
    message = "Not found"


class Conflict(ServiceError):
    status = 409
    code = "conflict"
    message = "Conflict"


class NameTaken(Conflict):
    code = "name_taken"
    message = "Conference name already taken for this application"

    def __init__(self, room_id: str):
        super().__init__(detail={"room_id": room_id})
