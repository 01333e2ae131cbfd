"""The endpoint form managers fill in; the rules themselves are the services' checks."""

from __future__ import annotations

from django import forms
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from chatdesk.webhooks import events, services


class EndpointForm(forms.Form):
    url = forms.CharField(label=_("URL"), max_length=500, help_text=_("https://, where your system receives events."))
    description = forms.CharField(
        label=_("Description"), max_length=200, required=False, help_text=_("What receives them, for your team.")
    )
    events = forms.MultipleChoiceField(
        choices=[(name, format_lazy("{} — {}", name, text)) for name, text in events.EVENTS.items()],
        widget=forms.CheckboxSelectMultiple,
        label=_("Events"),
        error_messages={"required": _("Pick at least one event.")},
    )

    def clean_url(self) -> str:
        return services.check_url(self.cleaned_data["url"])
