"""The Content-Security-Policy header (django-csp; the policy is CONTENT_SECURITY_POLICY in settings)."""

from __future__ import annotations

from csp.middleware import CSPMiddleware, PolicyParts
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase


class DeskCSPMiddleware(CSPMiddleware):
    """Adds this host's websocket URLs to connect-src: browsers that predate CSP level 3 do not count
    ws:// and wss:// on the page's own host as 'self'."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        try:
            host = request.get_host()
        except DisallowedHost:  # the 400 answer to a bad Host header keeps the plain policy
            return parts
        parts.update = {**(parts.update or {}), "connect-src": [f"ws://{host}", f"wss://{host}"]}
        return parts
