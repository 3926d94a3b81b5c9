"""Domain errors raised by services; the web maps each to one HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error a service raises on purpose."""

    code = "error"
    status = 400

    def __init__(self, message: str, *, fields: dict | None = None, detail: dict | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        self.detail = detail or {}


class NotFound(DomainError):
    code, status = "not_found", 404


class Conflict(DomainError):
    code, status = "conflict", 409


class Invalid(DomainError):
    """Validation failed; `fields` maps each bad field to what is wrong with it."""

    code, status = "validation_error", 422


class Forbidden(DomainError):
    code, status = "forbidden", 403


class Unauthorized(DomainError):
    code, status = "unauthorized", 401


class RateLimited(DomainError):
    code, status = "rate_limited", 429

    def __init__(self, message: str, *, retry_after: int = 1, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = max(1, int(retry_after))
