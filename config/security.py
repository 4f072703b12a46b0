"""Content-Security-Policy for every response.

Trace content is untrusted (span inputs and outputs may hold HTML and scripts). Templates
escape it; this header is the second wall: scripts run only from our own static files, so
an injected ``<script>`` or ``onerror=`` attribute does nothing even if escaping slipped.
htmx is told not to inject its indicator ``<style>`` and not to eval (see base.html's
htmx-config), so styles can be same-origin only too.

Django's technical error pages (DEBUG only) are built from inline styles and scripts; they
are left without the header so they stay readable in development.
"""

from django.conf import settings

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.DEBUG and response.status_code >= 400:
            return response
        response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
