"""Logging filters installed by settings.LOGGING."""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied

from chatdesk.drafting.pii import mask_pii


class RefusalsWithoutTraceback(logging.Filter):
    """A page refused on purpose (PermissionDenied: an agent opening a manager's page) is one line in the log,
    "Forbidden (Permission denied): /reports/", not a traceback: nothing went wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PermissionDenied):
            record.exc_info = None
            record.exc_text = None
        return True


class MaskPersonalData(logging.Filter):
    """Masks e-mail addresses, card numbers, IBANs and phone numbers (chatdesk.drafting.pii) in a record's
    message, traceback and stack before any handler writes it. The record is changed in place, so the
    handlers after this one (and those of other loggers it propagates to) see the masked text too."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask_pii(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_pii(record.exc_text)
            # Formatters that render exc_info themselves (the JSON one does) would print it unmasked;
            # every formatter falls back to exc_text.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = mask_pii(record.stack_info)
        return True
