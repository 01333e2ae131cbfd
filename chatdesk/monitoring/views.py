from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from chatdesk.monitoring import exposition


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text format (docs/operations.md, "Metrics"). 404 while neither METRICS_TOKEN nor
    METRICS_ALLOWED_NETWORKS is set (metrics are off); 403 without the token from outside those networks."""
    if not exposition.metrics_enabled():
        raise Http404("Metrics are off: set METRICS_TOKEN or METRICS_ALLOWED_NETWORKS.")
    if not exposition.may_read(request):
        return HttpResponse(exposition.REFUSED, status=403, content_type="text/plain; charset=utf-8")
    return HttpResponse(exposition.scrape(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
