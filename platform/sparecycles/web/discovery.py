"""Project discovery for the BOINC ecosystem: get_project_config and server_status.

    /get_project_config.php   BOINC's html/user/get_project_config.php, the document account
                              managers and clients read to learn about a project
    /server_status.xml        BOINC's server_status.php?xml=1 (show_status_xml)
    /server_status.php        the same XML, at the address BOINC tools poll
    /server_status.json       the same numbers as JSON

Element names are BOINC's; what has no counterpart here is left out (no daemons, no
scheduler URL: the "browser" platform computes over a WebSocket). Status numbers come from
the scheduler's and credit's selectors and are cached for a minute (they count rows).
"""

import datetime as dt
import time

from django.conf import settings
from django.contrib.auth.password_validation import get_default_password_validators
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_safe

from sparecycles.credit.averages import HALF_LIFE_S
from sparecycles.credit.boinc_xml import TEXT_LIMIT, escape
from sparecycles.credit.selectors import credit_status
from sparecycles.scheduler.selectors import work_status
from sparecycles.wire import PROTOCOL_VERSION

XML_DECLARATION = '<?xml version="1.0" encoding="utf-8"?>\n'
STATUS_CACHE_S = 60
# BOINC writes versions as major*10000 + minor*100 + release; the web client 1.0 was the
# first to speak protocol 1, so older clients (none) would be refused.
MIN_CLIENT_VERSION = 10000
PLATFORM = ("browser", "Web browser (Python in Pyodide, WebAssembly)")


def _master_url(request: HttpRequest) -> str:
    return (settings.SITE_ORIGIN or request.build_absolute_uri("/").rstrip("/")) + "/"


def _min_password_length() -> int:
    for validator in get_default_password_validators():
        if hasattr(validator, "min_length"):
            return int(validator.min_length)
    return 1


def _xml(body: str) -> HttpResponse:
    response = HttpResponse(XML_DECLARATION + body, content_type="application/xml; charset=utf-8")
    response["Cache-Control"] = "public, max-age=60"
    return response


@require_safe
def project_config(request: HttpRequest) -> HttpResponse:
    """BOINC's get_project_config.php, in its order (name, master_url, web_rpc_url_base, …)."""
    master = escape(_master_url(request))
    terms = render_to_string("web/terms_of_use.txt", {"site_name": settings.SITE_NAME}).strip()
    return _xml(
        "<project_config>\n"
        f"    <name>{escape(settings.SITE_NAME)}</name>\n"
        f"    <master_url>{master}</master_url>\n"
        f"    <web_rpc_url_base>{master}</web_rpc_url_base>\n"
        "    <web_stopped>0</web_stopped>\n"
        f"    <min_passwd_length>{_min_password_length()}</min_passwd_length>\n"
        "    <sched_stopped>0</sched_stopped>\n"
        f"    <min_client_version>{MIN_CLIENT_VERSION}</min_client_version>\n"
        f"    <protocol_version>{PROTOCOL_VERSION}</protocol_version>\n"
        "    <platforms>\n"
        "        <platform>\n"
        f"            <platform_name>{PLATFORM[0]}</platform_name>\n"
        f"            <user_friendly_name>{escape(PLATFORM[1])}</user_friendly_name>\n"
        "        </platform>\n"
        "    </platforms>\n"
        f"    <terms_of_use>\n{escape(terms, TEXT_LIMIT)}\n</terms_of_use>\n"
        f"    <stats_url>{master}stats/</stats_url>\n"
        "</project_config>\n")


def status() -> dict:
    """The numbers of the status documents, counted at most once a minute."""
    cached = cache.get("web:server_status")
    if cached is not None:
        return cached
    now = time.time()
    data = {"generated_at": timezone.now().isoformat(timespec="seconds"),
            **work_status(since=timezone.now() - dt.timedelta(days=1)),
            **credit_status(recent_since=now - HALF_LIFE_S, registered_since=now - 86400)}
    cache.set("web:server_status", data, STATUS_CACHE_S)
    return data


# show_status_xml's order (html/user/server_status.php), then what only this site counts.
STATUS_ITEMS = ["results_ready_to_send", "results_in_progress", "users_with_recent_credit",
                "users_with_credit", "users_registered_in_past_24_hours",
                "hosts_with_recent_credit", "hosts_with_credit",
                "hosts_registered_in_past_24_hours", "results_received_in_past_24_hours"]


@require_safe
def server_status_xml(request: HttpRequest) -> HttpResponse:
    data = status()
    items = "".join(f"   <{k}>{int(data[k])}</{k}>\n" for k in STATUS_ITEMS)
    apps = "".join(
        "<app>\n"
        f"   <id>{int(app['id'])}</id>\n   <name>{escape(app['name'])}</name>\n"
        f"   <unsent>{int(app['unsent'])}</unsent>\n"
        f"   <in_progress>{int(app['in_progress'])}</in_progress>\n"
        "</app>\n" for app in data["apps"])
    return _xml("<server_status>\n<daemon_status>\n</daemon_status>\n<database_file_states>\n"
                f"{items}<tasks_by_app>\n{apps}</tasks_by_app>\n"
                "</database_file_states>\n</server_status>\n")


@require_safe
def server_status_json(request: HttpRequest) -> JsonResponse:
    data = status()
    response = JsonResponse({
        "generated_at": data["generated_at"],
        **{k: data[k] for k in STATUS_ITEMS},
        "recent_credit_window_s": HALF_LIFE_S,
        "tasks_by_app": data["apps"],
    })
    response["Cache-Control"] = "public, max-age=60"
    return response
