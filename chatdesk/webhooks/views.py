"""Managers' pages for webhooks: endpoints, their secret and delivery log, replaying a delivery."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from chatdesk.conversations import selectors
from chatdesk.webhooks import selectors as webhook_selectors
from chatdesk.webhooks import services
from chatdesk.webhooks.forms import EndpointForm
from chatdesk.webhooks.models import Delivery, Endpoint

# What the 403 page says to an agent who is not a manager.
REFUSED = gettext_lazy("Only managers can manage webhooks.")

DELIVERIES_PER_PAGE = 25


@login_required
def endpoint_list(request: HttpRequest) -> HttpResponse:
    """Every endpoint with its state and delivery counts."""
    selectors.manager_or_refuse(request.user, reason=REFUSED)
    return render(request, "webhooks/endpoints.html", {"endpoints": webhook_selectors.endpoints_with_counts()})


@login_required
def endpoint_new(request: HttpRequest) -> HttpResponse:
    """Register an endpoint: URL, description, events. Its secret is shown on its page."""
    manager = selectors.manager_or_refuse(request.user, reason=REFUSED)
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = services.endpoint_create(
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
                by=manager,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Endpoint added. Give its signing secret to the system that receives events."))
            return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)
    return render(request, "webhooks/endpoint_new.html", {"form": form})


@login_required
def endpoint_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """One endpoint: its settings (POST saves them), its secret, and its delivery log with each attempt."""
    selectors.manager_or_refuse(request.user, reason=REFUSED)
    endpoint = get_object_or_404(Endpoint, pk=endpoint_id)
    initial = {"url": endpoint.url, "description": endpoint.description, "events": endpoint.events}
    form = EndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.endpoint_update(
                endpoint_id=endpoint.pk,
                url=form.cleaned_data["url"],
                events=form.cleaned_data["events"],
                description=form.cleaned_data["description"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, _("Saved."))
            return redirect("webhooks:endpoint", endpoint_id=endpoint.pk)
    page = Paginator(webhook_selectors.endpoint_deliveries(endpoint), DELIVERIES_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "webhooks/endpoint.html", {"endpoint": endpoint, "form": form, "page": page})


@login_required
@require_POST
def endpoint_state(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    """Enable or disable an endpoint (`active` = "1" or "0")."""
    selectors.manager_or_refuse(request.user, reason=REFUSED)
    active = request.POST.get("active")
    if active not in ("0", "1"):
        messages.error(request, _("Choose to enable or disable the endpoint."))
        return redirect("webhooks:endpoint", endpoint_id=endpoint_id)
    try:
        services.endpoint_set_active(endpoint_id=endpoint_id, active=active == "1")
    except Endpoint.DoesNotExist:
        raise Http404(_("That endpoint does not exist.")) from None
    messages.success(
        request, _("Enabled: events are sent again.") if active == "1" else _("Disabled: nothing is sent.")
    )
    return redirect("webhooks:endpoint", endpoint_id=endpoint_id)


@login_required
@require_POST
def delivery_replay(request: HttpRequest, delivery_id: int) -> HttpResponse:
    """Send a delivery's event again, now; back to its endpoint's log."""
    manager = selectors.manager_or_refuse(request.user, reason=REFUSED)
    try:
        replay = services.delivery_replay(delivery_id=delivery_id, by=manager)
    except Delivery.DoesNotExist:
        raise Http404(_("That delivery does not exist.")) from None
    except services.ReplayRefused as refusal:
        messages.error(request, str(refusal))
        endpoint_id = Delivery.objects.filter(pk=delivery_id).values_list("endpoint_id", flat=True).get()
        return redirect("webhooks:endpoint", endpoint_id=endpoint_id)
    messages.success(
        request, _("Replaying %(event)s: it is sent again now, as a new delivery.") % {"event": replay.event_type}
    )
    return redirect("webhooks:endpoint", endpoint_id=replay.endpoint_id)
