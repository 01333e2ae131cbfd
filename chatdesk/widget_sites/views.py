"""Managers' pages for widget sites: the list (a POST adds one), a site's embed snippet, origins, secret and
signing examples, setting its origins, rotating its secret, deleting it."""

from __future__ import annotations

from django.conf import settings
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
            site = services.site_create(
                name=request.POST.get("name", ""), origins=request.POST.get("origins", ""), by=manager
            )
        except ServiceError as error:
            messages.error(request, error.message)
            status = 422
        else:
            messages.success(request, _("Site added. Give its secret to the site's backend, never to its pages."))
            return redirect("sites:site", site_id=site.pk)
    context = {"sites": WidgetSite.objects.all(), "form": request.POST, **origins_context()}
    return render(request, "widget_sites/sites.html", context, status=status)


def origins_context() -> dict[str, object]:
    """What the pages say the widget connects from besides a site's origins."""
    return {"origins_limit": services.MAX_ORIGINS, "global_origins": settings.WIDGET_ALLOWED_ORIGINS}


def render_site(request: HttpRequest, site: WidgetSite, *, origins_text: str, status: int = 200) -> HttpResponse:
    widget_url = request.build_absolute_uri(static("js/widget.js"))
    context = {"site": site, "widget_url": widget_url, "origins_text": origins_text, **origins_context()}
    response = render(request, "widget_sites/site.html", context, status=status)
    add_never_cache_headers(response)  # it shows the secret
    return response


@login_required
def site_detail(request: HttpRequest, site_id: int) -> HttpResponse:
    """A site: the widget's embed snippet with its data attributes, its origins, the secret, signing examples."""
    selectors.manager_or_refuse(request.user)
    site = get_object_or_404(WidgetSite, pk=site_id)
    return render_site(request, site, origins_text="\n".join(site.origins))


@login_required
@require_POST
def site_origins(request: HttpRequest, site_id: int) -> HttpResponse:
    """Replace the site's origins; a bad one shows the site page again with the text as typed and why."""
    selectors.manager_or_refuse(request.user)
    text = request.POST.get("origins", "")
    try:
        services.site_set_origins(site_id=site_id, origins=text)
    except WidgetSite.DoesNotExist:
        raise Http404(_("That site does not exist.")) from None
    except ServiceError as error:
        messages.error(request, error.message)
        return render_site(request, get_object_or_404(WidgetSite, pk=site_id), origins_text=text, status=422)
    messages.success(request, _("Origins saved. The widget connects from them within a few seconds."))
    return redirect("sites:site", site_id=site_id)


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
