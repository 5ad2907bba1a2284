"""Keep secrets out of stores, logs and reports."""

from __future__ import annotations

import re
from typing import Any

# Keys whose values are secrets. `*_env` keys hold the NAME of an environment variable, not a secret.
SECRET_KEY = re.compile(r"(api[_-]?key|token|secret|password|authorization|bearer)$", re.IGNORECASE)
REDACTED = "***redacted***"


def redact(value: Any) -> Any:
    """A copy of nested dicts/lists with secret-looking values replaced."""
    if isinstance(value, dict):
        return {
            k: (REDACTED if isinstance(k, str) and SECRET_KEY.search(k) and v else redact(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def secret_env_values() -> list[str]:
    """Values of environment variables whose names look like they hold secrets."""
    import os

    names = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.IGNORECASE)
    return [v for k, v in os.environ.items() if names.search(k) and len(v) >= 8]


def scrub(text: str, secrets: list[str] | None = None) -> str:
    for secret in secrets if secrets is not None else secret_env_values():
        text = text.replace(secret, REDACTED)
    return text


class RedactingFilter:
    """A logging filter that removes secret environment values from every record it passes."""

    def filter(self, record: Any) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def install_log_redaction() -> None:
    import logging

    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
