"""Forms of the account, claim and team pages; the writes they lead to are in services."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.utils.text import slugify

from sparecycles.volunteers.login_throttle import ThrottledLoginFormMixin
from sparecycles.volunteers.models import Team

# Paths under /teams/ that are pages, not team slugs.
RESERVED_TEAM_SLUGS = {"new"}


class PlainLabels:
    """Labels without Django's trailing colon."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class ClaimThisBrowserMixin(forms.Form):
    """Sign-up and log-in also claim this browser's device (its token comes from claim.js)."""

    claim_device = forms.BooleanField(
        required=False, initial=True,
        label="Add this browser’s device, and the credit it earned, to my account")
    device_token = forms.CharField(required=False, max_length=200, widget=forms.HiddenInput)


class SignupForm(PlainLabels, ClaimThisBrowserMixin, UserCreationForm):
    class Meta(UserCreationForm.Meta):
        fields = ("username",)


class LoginForm(ThrottledLoginFormMixin, PlainLabels, ClaimThisBrowserMixin,
                AuthenticationForm):
    pass


class AccountForm(PlainLabels, forms.Form):
    name = forms.CharField(label="Display name", max_length=100,
                           help_text="Shown on leaderboards, your profile and your team’s page.")
    show_anonymous = forms.BooleanField(
        required=False, label="Appear as “Anonymous” on public pages",
        help_text="Your credit still counts, for you and your team; your name and team are "
                  "hidden on leaderboards and your profile.")


class ClaimCodeForm(PlainLabels, forms.Form):
    code = forms.CharField(
        label="Claim code", max_length=12, min_length=8,
        help_text="On the other device, open this site and press “Show a claim code”.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters",
                                      "spellcheck": "false", "inputmode": "text"}))


class TeamForm(PlainLabels, forms.Form):
    name = forms.CharField(label="Team name", min_length=2, max_length=100)
    description = forms.CharField(label="Description", required=False, max_length=5000,
                                  widget=forms.Textarea(attrs={"rows": 5}))

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if slugify(name) in RESERVED_TEAM_SLUGS:
            raise forms.ValidationError("That name is reserved; choose another.")
        return name


class TeamDescriptionForm(PlainLabels, forms.ModelForm):
    class Meta:
        model = Team
        fields = ["description"]
        widgets = {"description": forms.Textarea(attrs={"rows": 8})}


class AdminLoginForm(ThrottledLoginFormMixin, AdminAuthenticationForm):
    """The admin's login, saying when it is throttled (urls.py installs it)."""
