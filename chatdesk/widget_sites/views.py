"""Managers' pages for widget sites: the list (a POST adds one), a site's embed snippet, secret and signing
examples, rotating its secret, deleting it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.templatetags.static import static
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from chatdesk.conversations import selectors
from chatdesk.conversations.errors import ServiceError
from chatdesk.widget_sites import services
from chatdesk.widget_sites.models import WidgetSite


@login_required
def site_list(request: HttpRequest) -> HttpResponse:
    """Every site; a POST adds one and goes to its page."""
    manager = selectors.manager_or_refuse(request.user)
    status = 200
    if request.method == "POST":
        try:
            site = services.site_create(name=request.POST.get("name", ""), by=manager)
        except ServiceError as error:
            messages.error(request, error.message)
            status = 422
        else:
            messages.success(request, _("Site added. Give its secret to the site's backend, never to its pages."))
            return redirect("sites:site", site_id=site.pk)
    return render(request, "widget_sites/sites.html", {"sites": WidgetSite.objects.all()}, status=status)


@login_required
def site_detail(request: HttpRequest, site_id: int) -> HttpResponse:
    """A site: the widget's embed snippet with its data attributes, the secret, signing examples."""
    selectors.manager_or_refuse(request.user)
    site = get_object_or_404(WidgetSite, pk=site_id)
    widget_url = request.build_absolute_uri(static("js/widget.js"))
    response = render(request, "widget_sites/site.html", {"site": site, "widget_url": widget_url})
    add_never_cache_headers(response)  # it shows the secret
    return response


@login_required
@require_POST
def site_rotate(request: HttpRequest, site_id: int) -> HttpResponse:
    selectors.manager_or_refuse(request.user)
    try:
        services.site_rotate_secret(site_id=site_id)
    except WidgetSite.DoesNotExist:
        raise Http404(_("That site does not exist.")) from None
    messages.success(
        request, _("New secret made. Identities signed with the old one are shown as unverified from now on.")
    )
    return redirect("sites:site", site_id=site_id)


@login_required
@require_POST
def site_remove(request: HttpRequest, site_id: int) -> HttpResponse:
    selectors.manager_or_refuse(request.user)
    try:
        site = services.site_delete(site_id=site_id)
    except WidgetSite.DoesNotExist:
        raise Http404(_("That site does not exist.")) from None
    messages.success(request, _("Deleted %(name)s. Widgets naming its key are refused.") % {"name": site.name})
    return redirect("sites:sites")
