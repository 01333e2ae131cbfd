"""Reads on widget sites."""

from __future__ import annotations

from chatdesk.widget_sites.models import WidgetSite


def site_origins() -> list[str]:
    """Every origin some site lists, each once, sorted."""
    return sorted({origin for origins in WidgetSite.objects.values_list("origins", flat=True) for origin in origins})
