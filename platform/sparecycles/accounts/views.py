"""Account, profile, dashboard, device-claim and team pages. Thin: forms in, services out."""

import json
from functools import wraps

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from sparecycles.credit.models import MICRO
from sparecycles.credit.selectors import PAGE_SIZE, team_rank, team_totals, volunteer_board
from sparecycles.errors import error_body, error_response
from sparecycles.ledger.selectors import volunteer_tokens
from sparecycles.volunteers import selectors as identity
from sparecycles.volunteers import services as membership
from sparecycles.volunteers.compute_settings import MAX_BODY_BYTES as MAX_SETTINGS_BYTES
from sparecycles.volunteers.compute_settings import SettingsError
from sparecycles.volunteers.identity import cpid
from sparecycles.volunteers.models import Team, Volunteer

from . import emails, selectors, services
from .charts import credit_chart
from .forms import (
    AccountDeleteForm,
    AccountForm,
    ClaimCodeForm,
    EmailForm,
    LoginForm,
    NewPasswordForm,
    ResetForm,
    SignupForm,
    TeamDescriptionForm,
    TeamForm,
)

CHART_DAYS = 30


def _error_text(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def _json_login_required(view):
    """For fetch() endpoints: a 401 with a message instead of a redirect to the login page."""
    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return error_response(401, "Log in first, then try again.")
        return view(request, *args, **kwargs)
    return wrapped


def _claim_this_browser(request: HttpRequest, data: dict) -> None:
    """After sign-up or log-in: attach the device whose token claim.js put in the form."""
    token = (data.get("device_token") or "").strip()
    if not (data.get("claim_device") and token):
        return
    try:
        device = services.device_claim(user=request.user, token=token)
    except ValidationError as exc:
        messages.warning(request, f"This browser’s device was not added: {_error_text(exc)}")
        return
    messages.success(request, f"This browser ({device.label}) and its credit are now part of "
                              "your account.")


def _next_url(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                       require_https=request.is_secure()):
        return target
    return default


# --- accounts ---------------------------------------------------------------------------
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("accounts:dashboard")
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        volunteer = services.account_create(username=form.cleaned_data["username"],
                                            password=form.cleaned_data["password1"],
                                            email=form.cleaned_data.get("email") or "")
        login(request, volunteer.user, backend=settings.AUTHENTICATION_BACKENDS[0])
        messages.success(request, f"Welcome, {volunteer.user.get_username()}! Your account is "
                                  "ready.")
        if volunteer.user.email:
            _send_verification(request, volunteer)
        _claim_this_browser(request, form.cleaned_data)
        return redirect(_next_url(request, reverse("accounts:dashboard")))
    return render(request, "registration/signup.html", {"form": form,
                                                        "next": _next_url(request, "")})


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    form_class = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        _claim_this_browser(self.request, form.cleaned_data)
        return response

    def get_default_redirect_url(self) -> str:
        return reverse("accounts:dashboard")


class LogoutView(auth_views.LogoutView):
    template_name = "registration/logged_out.html"


def _send_verification(request: HttpRequest, volunteer: Volunteer) -> None:
    user = volunteer.user
    if not services.mail_allowed(client_address=request.META.get("REMOTE_ADDR"),
                                 recipient=user.email):
        messages.warning(request, "Too many verification emails were asked for; wait an hour "
                                  "and ask again.")
        return
    emails.verification_send(request=request, volunteer_id=volunteer.pk,
                             username=user.get_username(), email=user.email)
    messages.info(request, f"We sent a link to {user.email}: open it to verify the address.")


def _account_page(request: HttpRequest, volunteer: Volunteer, *, form=None, email_form=None,
                  status: int = 200) -> HttpResponse:
    if form is None:
        form = AccountForm(initial={"name": volunteer.name,
                                    "show_anonymous": volunteer.show_anonymous,
                                    "in_stats_exports": volunteer.in_stats_exports})
    if email_form is None:
        email_form = EmailForm(initial={"email": request.user.email})
    return render(request, "accounts/account.html", {
        "form": form, "email_form": email_form, "volunteer": volunteer,
        "cpid": cpid(volunteer), "email_verified": bool(
            request.user.email and volunteer.email_verified_at)}, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def account(request: HttpRequest) -> HttpResponse:
    """Display name, the anonymity switch, the export choice, the email and the cpid."""
    volunteer = membership.volunteer_for_user(user=request.user)
    if request.method != "POST":
        return _account_page(request, volunteer)
    form = AccountForm(request.POST)
    if form.is_valid():
        try:
            services.volunteer_update(volunteer=volunteer, name=form.cleaned_data["name"],
                                      show_anonymous=form.cleaned_data["show_anonymous"],
                                      in_stats_exports=form.cleaned_data["in_stats_exports"])
        except ValidationError as exc:
            form.add_error("name", exc)
        else:
            messages.success(request, "Your settings are saved.")
            return redirect("accounts:account")
    return _account_page(request, volunteer, form=form)


@login_required
@require_POST
def email_change(request: HttpRequest) -> HttpResponse:
    """Set, change or remove the account's email; a new address gets a verification link."""
    volunteer = membership.volunteer_for_user(user=request.user)
    form = EmailForm(request.POST, request=request)
    if not form.is_valid():
        return _account_page(request, volunteer, email_form=form)
    if services.account_email_change(user=request.user, email=form.cleaned_data["email"]):
        volunteer.refresh_from_db()
        if request.user.email:
            _send_verification(request, volunteer)
        else:
            messages.success(request, "Your email address is removed.")
    else:
        messages.info(request, "That is already your email address.")
    return redirect(reverse("accounts:account") + "#email")


@login_required
@require_POST
def email_verify_resend(request: HttpRequest) -> HttpResponse:
    volunteer = membership.volunteer_for_user(user=request.user)
    if request.user.email and not volunteer.email_verified_at:
        _send_verification(request, volunteer)
    return redirect(reverse("accounts:account") + "#email")


@login_required
@require_GET
def email_verify(request: HttpRequest, token: str) -> HttpResponse:
    """The link from the verification email: verifies the address it names, for the account
    it was sent to, if that account (logged in here) still has that address."""
    try:
        claim = emails.verify_token_read(token)
    except emails.BadVerifyLink as exc:
        return _verify_refused(request, exc.message)
    volunteer = identity.volunteer_of_user(user=request.user)
    if volunteer is None or volunteer.pk != claim.volunteer_id:
        return _verify_refused(request, "This link verifies another account’s address. Log in "
                                        "as that account, then open the link again.")
    if not membership.volunteer_email_verified(volunteer=volunteer, email=claim.email):
        return _verify_refused(request, "This link is for an address your account no longer "
                                        "has. Ask for a new link on your account page.")
    messages.success(request, f"Your email address {claim.email} is verified.")
    return redirect(reverse("accounts:account") + "#email")


def _verify_refused(request: HttpRequest, message: str) -> HttpResponse:
    return render(request, "accounts/forbidden.html", {
        "title": "Email not verified", "message": message,
        "back": reverse("accounts:account")}, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def account_delete(request: HttpRequest) -> HttpResponse:
    """Delete the account, after its password: the name goes from every public page, the
    credit stays in the totals, the ledger keeps an anonymous account."""
    form = AccountDeleteForm(request.POST if request.method == "POST" else None,
                             request=request)
    if request.method == "POST" and form.is_valid():
        try:
            services.account_delete(user=request.user)
        except services.AccountNotDeletable as exc:
            form.add_error(None, str(exc))
        else:
            logout(request)
            messages.success(request, "Your account is deleted. Your name is gone from every "
                                      "public page; the credit you earned still counts.")
            return redirect("accounts:deleted")
    return render(request, "accounts/account_delete.html", {"form": form},
                  status=400 if form.errors else 200)


@require_GET
def account_deleted(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/account_deleted.html")


# --- password reset (Django's views on the site's pages) -----------------------------
class PasswordResetView(auth_views.PasswordResetView):
    """Asks for an address and always answers the same, whether or not an account has it;
    mail is throttled per client address and per recipient."""

    form_class = ResetForm
    template_name = "registration/reset_form.html"
    email_template_name = "registration/reset_email.txt"
    subject_template_name = "registration/reset_subject.txt"
    success_url = reverse_lazy("accounts:password-reset-sent")

    @property
    def extra_email_context(self) -> dict:
        # The link's origin is SITE_ORIGIN's, as the verification link's: never the Host
        # header alone (any host in ALLOWED_HOSTS passes, the compute origin's included).
        return {"site_name": settings.SITE_NAME, "origin": emails.site_origin(self.request)}

    def form_valid(self, form):
        if services.mail_allowed(client_address=self.request.META.get("REMOTE_ADDR"),
                                 recipient=form.cleaned_data["email"]):
            return super().form_valid(form)
        return redirect(self.get_success_url())


class PasswordResetSentView(auth_views.PasswordResetDoneView):
    template_name = "registration/reset_sent.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    form_class = NewPasswordForm
    template_name = "registration/reset_confirm.html"
    success_url = reverse_lazy("accounts:password-reset-complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        # Whoever had the old password may hold an API token too: a reset ends it (the
        # sessions end with the password's hash already).
        services.api_tokens_revoke(user=form.user)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "registration/reset_complete.html"


# --- the dashboard -----------------------------------------------------------------------
def _ledger_url(volunteer: Volunteer) -> str | None:
    try:
        return reverse("ledger:volunteer", args=[volunteer.pk])
    except NoReverseMatch:  # the ledger app is optional
        return None


def _rank_url(rank: int | None, volunteer_id: int) -> str | None:
    """The volunteers board page holding `rank`, scrolled to the volunteer's row."""
    if rank is None:
        return None
    page = (rank - 1) // PAGE_SIZE + 1
    return f"{reverse('leaderboards:volunteers')}?order=credit&page={page}#row-{volunteer_id}"


@login_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The volunteer's devices, results, credit over time, pending credit and running tasks."""
    volunteer = identity.volunteer_of_user(user=request.user)
    context = {"volunteer": volunteer, "claim_form": ClaimCodeForm()}
    if volunteer is not None:
        today = timezone.localdate()
        days = selectors.credit_by_day(volunteer=volunteer, days=CHART_DAYS, today=today)
        pending = selectors.pending_credit_micro(volunteer=volunteer)
        profile = selectors.volunteer_profile(volunteer=volunteer)
        granted = profile.credit_micro
        pending_share = round(100 * pending / max(1, pending + granted))
        context.update({
            "profile": profile,
            "rank_url": _rank_url(profile.rank_credit, volunteer.pk),
            "devices": selectors.device_rows(volunteer=volunteer),
            "results": selectors.results_by_state(volunteer=volunteer),
            "pending_credit": pending / MICRO,
            "granted_credit": profile.credit,
            "pending_share": pending_share,
            "granted_share": 100 - pending_share if pending or granted else 0,
            "chart": credit_chart(days, total_micro=granted),
            "chart_days": [(day, amount / MICRO) for day, amount in days if amount],
            "chart_first_day": days[0][0],
            "in_progress": list(selectors.tasks_in_progress(volunteer=volunteer)),
            "tokens": volunteer_tokens(volunteer),
            "ledger_url": _ledger_url(volunteer),
            "now": timezone.now(),
        })
    return render(request, "accounts/dashboard.html", context)


# --- devices -------------------------------------------------------------------------------
@require_POST
@_json_login_required
def claim_this_browser(request: HttpRequest) -> JsonResponse:
    """claim.js posts this browser's device token; the device joins the user's volunteer."""
    try:
        device = services.device_claim(user=request.user,
                                       token=request.POST.get("token", "").strip())
    except ValidationError as exc:
        return error_response(409, _error_text(exc))
    return JsonResponse({"device_id": device.public_id, "label": device.label,
                         "volunteer_id": device.volunteer_id})


@login_required
@require_POST
def claim_by_code(request: HttpRequest) -> HttpResponse:
    form = ClaimCodeForm(request.POST)
    if not form.is_valid():
        messages.error(request, "A claim code has 8 letters and digits, like ABCD-2345. "
                                "Check it and try again.")
        return redirect(reverse("accounts:dashboard") + "#claim")
    try:
        device = services.device_claim(user=request.user, code=form.cleaned_data["code"])
    except ValidationError as exc:
        messages.error(request, _error_text(exc))
    else:
        messages.success(request, f"{device.label} and its credit are now part of your account.")
    return redirect(reverse("accounts:dashboard") + "#devices")


@require_POST
def device_claim_code(request: HttpRequest) -> JsonResponse:
    """A short code this browser's device shows, to be typed in on a logged-in browser.

    A browser without a device yet (never pressed Start) gets one now, as its first hello
    would have made it: the answer then carries `device_token`, which the page keeps."""
    token = request.POST.get("token", "").strip()[:200]
    device = identity.device_by_token(token=token)
    new_token = None
    if device is None:
        if token:
            return error_response(404, "This browser's device is unknown here (it was "
                                       "removed): press Start once, then ask for a code again.")
        try:
            session = services.device_enrol(user=request.user,
                                            address=request.META.get("REMOTE_ADDR", ""))
        except services.TooManyDevices:
            return error_response(429, "Too many new devices from your address this hour; "
                                       "try again later.")
        device, new_token = session.device, session.new_token
    claim = services.claim_code_issue(device=device)
    answer = {"code": f"{claim.code[:4]}-{claim.code[4:]}",
              "expires_at": claim.expires_at.isoformat(),
              "ttl_s": round((claim.expires_at - timezone.now()).total_seconds()),
              "device_id": device.public_id}
    if new_token:
        answer["device_token"] = new_token
    return JsonResponse(answer)


@require_GET
def device_earnings(request: HttpRequest) -> JsonResponse:
    """The volunteer page's "All time" earnings for the device whose token it sends in the
    X-Device-Token header (a header, not a cookie: no other site can make a browser send it)."""
    device = identity.device_by_token(token=request.headers.get("X-Device-Token", "").strip()[:200])
    if device is None:
        return error_response(404, "This browser has no device yet: press Start first.")
    response = JsonResponse(selectors.device_earnings(volunteer=device.volunteer))
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "PUT"])
@_json_login_required
def compute_settings(request: HttpRequest) -> JsonResponse:
    """The volunteer page's settings kept with the account: GET them, PUT them (JSON)."""
    volunteer = membership.volunteer_for_user(user=request.user)
    if request.method == "PUT":
        if len(request.body) > MAX_SETTINGS_BYTES:
            return error_response(413, f"Settings are at most {MAX_SETTINGS_BYTES} bytes.")
        try:
            raw = json.loads(request.body)
        except (ValueError, RecursionError):
            return error_response(400, "Send the settings as a JSON object.", code="parse_error")
        try:
            membership.compute_settings_save(volunteer=volunteer, raw=raw)
        except SettingsError as exc:
            return JsonResponse(error_body(400, str(exc), fields=exc.fields), status=400)
    response = JsonResponse({"settings": volunteer.compute_settings or None})
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def device_identify(request: HttpRequest) -> JsonResponse:
    """Remember, in this browser's session, whose device it holds: boards then highlight
    the visitor's own row before they have an account."""
    device = identity.device_by_token(token=request.POST.get("token", "").strip())
    answer = {"device_id": device.public_id if device else None,
              "device_volunteer_id": device.volunteer_id if device else None}
    if request.user.is_authenticated:  # the account decides whose row is highlighted
        volunteer_id = identity.viewer_volunteer_id(user=request.user, session=None)
        return JsonResponse({"volunteer_id": volunteer_id, **answer})
    if device is None:
        request.session.pop(identity.SESSION_VOLUNTEER_KEY, None)
        return JsonResponse({"volunteer_id": None, **answer})
    request.session[identity.SESSION_VOLUNTEER_KEY] = device.volunteer_id
    return JsonResponse({"volunteer_id": device.volunteer_id, **answer})


# --- public profiles ---------------------------------------------------------------------
@require_GET
def profile(request: HttpRequest, pk: int) -> HttpResponse:
    volunteer = get_object_or_404(Volunteer.objects.select_related("team"), pk=pk)
    if volunteer.merged_into_id:  # an anonymous profile folded into an account: that one
        return redirect("accounts:profile", pk=volunteer.merged_into_id)
    viewer_id = identity.viewer_volunteer_id(user=request.user, session=request.session)
    return render(request, "accounts/profile.html", {
        "profile": selectors.volunteer_profile(volunteer=volunteer),
        "is_you": viewer_id == volunteer.pk,
    })


# --- teams -----------------------------------------------------------------------------------
def _page_number(request: HttpRequest) -> int:
    try:
        return max(1, int(request.GET.get("page") or 1))
    except ValueError:
        return 1


@require_GET
def team_list(request: HttpRequest) -> HttpResponse:
    query = " ".join(request.GET.get("q", "").split())[:100]
    teams, page, pages, total = selectors.team_directory(query=query,
                                                         page=_page_number(request))
    viewer = identity.volunteer_of_user(user=request.user)
    return render(request, "accounts/team_list.html", {
        "teams": teams, "page": page, "pages": pages, "total": total, "query": query,
        "start": (page - 1) * selectors.TEAMS_PER_PAGE,
        "base_query": f"{urlencode({'q': query})}&" if query else "",
        "your_team": viewer.team if viewer else None,
    })


@login_required
@require_http_methods(["GET", "POST"])
def team_create(request: HttpRequest) -> HttpResponse:
    form = TeamForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            team = membership.team_create(founder=membership.volunteer_for_user(user=request.user),
                                        name=form.cleaned_data["name"],
                                        description=form.cleaned_data["description"])
        except ValidationError as exc:
            form.add_error("name", exc)
        else:
            messages.success(request, f"“{team.name}” is founded, and you are its first member.")
            return redirect("accounts:team", slug=team.slug)
    return render(request, "accounts/team_form.html", {"form": form})


def _team_or_404(slug: str) -> Team:
    team = identity.team_by_slug(slug=slug)
    if team is None:
        raise Http404("No such team.")
    return team


@require_GET
def team_detail(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(slug)
    order = "rac" if request.GET.get("order") == "rac" else "credit"
    board = volunteer_board(order=order, page=_page_number(request), team=team)
    viewer = identity.volunteer_of_user(user=request.user)
    viewer_id = identity.viewer_volunteer_id(user=request.user, session=request.session)
    return render(request, "accounts/team_detail.html", {
        "team": team, "totals": team_totals(team_id=team.pk), "board": board, "order": order,
        "viewer_id": viewer_id,
        "is_member": viewer is not None and viewer.team_id == team.pk,
        "is_founder": viewer is not None and team.founder_id == viewer.pk,
        "founder_name": team.founder.public_name if team.founder else None,
        "rank": team_rank(team_id=team.pk),
        "without_credit": max(0, team.member_count - board.total),
    })


@login_required
@require_POST
def team_join(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(slug)
    membership.team_join(volunteer=membership.volunteer_for_user(user=request.user), team=team)
    messages.success(request, f"You joined “{team.name}”. Credit you earn from now on counts "
                              "for the team too.")
    return redirect("accounts:team", slug=team.slug)


@login_required
@require_POST
def team_leave(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(slug)
    volunteer = identity.volunteer_of_user(user=request.user)
    if volunteer is not None and volunteer.team_id == team.pk:
        membership.team_leave(volunteer=volunteer)
        messages.success(request, f"You left “{team.name}”. The credit you earned with it "
                                  "stays with the team.")
    return redirect("accounts:team", slug=team.slug)


@login_required
@require_http_methods(["GET", "POST"])
def team_edit(request: HttpRequest, slug: str) -> HttpResponse:
    team = _team_or_404(slug)
    volunteer = identity.volunteer_of_user(user=request.user)
    if volunteer is None or team.founder_id != volunteer.pk:
        return render(request, "accounts/forbidden.html", {
            "message": "Only the team’s founder can edit its description.",
            "back": reverse("accounts:team", args=[team.slug])}, status=403)
    form = TeamDescriptionForm(request.POST or None, instance=team)
    if request.method == "POST" and form.is_valid():
        try:
            membership.team_update(team=team, editor=volunteer,
                                 description=form.cleaned_data["description"])
        except ValidationError as exc:
            form.add_error("description", exc)
        else:
            messages.success(request, "The team’s description is saved.")
            return redirect("accounts:team", slug=team.slug)
    return render(request, "accounts/team_edit.html", {"form": form, "team": team})

