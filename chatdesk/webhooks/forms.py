"""The endpoint form managers fill in; the rules themselves are the services' checks."""

from __future__ import annotations

from django import forms

from chatdesk.webhooks import events, services


class EndpointForm(forms.Form):
    url = forms.CharField(label="URL", max_length=500, help_text="https://, where your system receives events.")
    description = forms.CharField(max_length=200, required=False, help_text="What receives them, for your team.")
    events = forms.MultipleChoiceField(
        choices=[(name, f"{name} — {text}") for name, text in events.EVENTS.items()],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one event."},
    )

    def clean_url(self) -> str:
        return services.check_url(self.cleaned_data["url"])
