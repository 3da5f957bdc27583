"""Forms of the account, claim and team pages; the writes they lead to are in services."""

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.forms import (
    AuthenticationForm,
    PasswordResetForm,
    SetPasswordForm,
    UserCreationForm,
)
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


EMAIL_HELP = ("Never shown. Once you verify it, it lets you reset a forgotten password, and it "
              "becomes part of your cpid (the id statistics sites list you under).")


class SignupForm(PlainLabels, ClaimThisBrowserMixin, UserCreationForm):
    email = forms.EmailField(label="Email (optional)", required=False, max_length=254,
                             help_text=EMAIL_HELP,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    class Meta(UserCreationForm.Meta):
        fields = ("username", "email")


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
    in_stats_exports = forms.BooleanField(
        required=False, label="Include me in the daily statistics exports",
        help_text="Stats sites (BOINCstats, Free-DC, BOINC Combined Stats) import them and "
                  "publish your name, credit and cpid. Unticked, you are left out from the "
                  "next export on; your credit still counts here.")


class CurrentPasswordForm(PlainLabels, forms.Form):
    """A form that asks for the account's password (throttled like every password check):
    a borrowed or stolen session alone must not change how the account is recovered, nor
    delete it."""

    password = forms.CharField(label="Your password", strip=False,
                               widget=forms.PasswordInput(attrs={"autocomplete":
                                                                 "current-password"}))

    def __init__(self, *args, request=None, **kwargs):
        self.request = request
        super().__init__(*args, **kwargs)

    def clean_password(self) -> str:
        password = self.cleaned_data["password"]
        user = self.request.user
        checked = authenticate(self.request, username=user.get_username(), password=password)
        refusal = getattr(self.request, "login_refusal", None)
        if refusal is not None:
            raise forms.ValidationError(refusal.message, code="throttled")
        if checked is None or checked.pk != user.pk:
            raise forms.ValidationError("That is not your password.", code="invalid_password")
        return password


class EmailForm(CurrentPasswordForm):
    """The address password resets go to: changing it asks for the password, or whoever
    holds a session could put their own address there, verify it and reset the password."""

    field_order = ["email", "password"]
    email = forms.EmailField(label="Email", required=False, max_length=254,
                             help_text=EMAIL_HELP + " Leave empty to remove it.",
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))


class AccountDeleteForm(CurrentPasswordForm):
    """Deleting an account asks for its password."""


class ResetForm(PlainLabels, PasswordResetForm):
    """Django's reset form, for verified addresses only (an unverified one may be someone
    else's). The page says the same whether or not an account has the address."""

    email = forms.EmailField(label="Your account’s email", max_length=254,
                             widget=forms.EmailInput(attrs={"autocomplete": "email"}))

    def get_users(self, email):
        users = get_user_model()._default_manager.filter(
            email__iexact=email, is_active=True, volunteer__email_verified_at__isnull=False,
            volunteer__deleted_at__isnull=True)
        return (user for user in users if user.has_usable_password())


class NewPasswordForm(PlainLabels, SetPasswordForm):
    pass


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
