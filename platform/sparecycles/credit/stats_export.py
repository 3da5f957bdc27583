"""The daily statistics dump BOINC statistics sites import: BOINC's db_dump, file for file.

    user.gz, team.gz, host.gz      <users>/<teams>/<hosts>: rows with credit only
    user_deleted.gz, host_deleted.gz   accounts deleted and their devices: <id/> and cpid
    tables.xml                     counts, total credit, the time of the export, the apps
    <name>.json.gz                 each table again as a JSON array of the same fields

Element names, their order and the number formats are sched/db_dump.cpp's (write_user,
write_team, write_host, write_*_deleted, tables_file); boinc_xml.py writes them. Every
file starts with an XML declaration; text is cleaned of what XML 1.0 cannot carry and
escaped, so no name or description can make a file unparsable.

Who is in it: volunteers with credit who chose to appear (Volunteer.in_stats_exports), not
deleted and not merged into an account; teams with credit; devices with credit of those
volunteers (a volunteer shown as "Anonymous" keeps their devices' userid out, as BOINC
does for users who hide their hosts). The counts in tables.xml are BOINC's: every user and
host with credit, whatever their choice.

The dump is written into a new directory and then swapped in by replacing a symlink
(stats_dir() -> <name>.dumps/<stamp>), so a reader sees one whole day or the other.

The queries are a fixed set (about ten) whatever the number of rows: every table is one
streamed query, device totals and averages one grouped query each.
"""

import datetime as dt
import math
import os
import secrets
import shutil
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Sum

from sparecycles.projects.models import App
from sparecycles.volunteers.identity import cpid_from
from sparecycles.volunteers.models import Device, Team, Volunteer

from . import boinc_xml
from .averages import HALF_LIFE_S
from .models import MICRO, CreditGrant

CHUNK = 2000
KEEP_DUMPS = 3  # the newest dumps kept beside the current one's directory
BOINC_TEAM_TYPE_OTHER = 1  # html/inc/team_types.inc: 1 is "Other" (unclassified)
BOINC_NO_COUNTRY = "None"  # html/inc/countries.inc: the country of someone who gave none
HOST_MISC = '{"p_fpops": "browser estimate", "client": "browser"}'


def stats_dir() -> Path:
    return Path(settings.SPARECYCLES["STATS_DIR"])


# --- rows ------------------------------------------------------------------------------------

def _unix(moment: dt.datetime | None) -> int:
    return int(moment.timestamp()) if moment is not None else 0


def _credit(micro: int | None) -> float:
    return (micro or 0) / MICRO


def user_rows() -> Iterator[dict]:
    for (pk, name, anonymous, created, team_id, cross_id, verified, email, micro, rac,
         rac_time) in (
            Volunteer.objects.filter(credit__credit_micro__gt=0, in_stats_exports=True,
                                     deleted_at__isnull=True, merged_into__isnull=True)
            .order_by("pk")
            .values_list("pk", "name", "show_anonymous", "created_at", "team_id",
                         "cross_project_id", "email_verified_at", "user__email",
                         "credit__credit_micro", "credit__rac", "credit__rac_time")
            .iterator(chunk_size=CHUNK)):
        yield {"id": pk, "name": "Anonymous" if anonymous else name,
               "create_time": _unix(created), "total_credit": _credit(micro),
               "expavg_credit": rac or 0.0, "expavg_time": rac_time or 0.0,
               "cpid": cpid_from(cross_project_id=cross_id,
                                 verified_email=email if verified is not None else None),
               "teamid": team_id or None}


def user_deleted_rows() -> Iterator[dict]:
    # The cpid stats sites knew the account by: stored at deletion, when the email left.
    for pk, cross_id, deleted_cpid in (
            Volunteer.objects.filter(deleted_at__isnull=False).order_by("pk")
            .values_list("pk", "cross_project_id", "deleted_cpid")
            .iterator(chunk_size=CHUNK)):
        yield {"id": pk, "cpid": deleted_cpid or cpid_from(cross_project_id=cross_id,
                                                           verified_email=None)}


def team_rows() -> Iterator[dict]:
    for (pk, name, founder_id, created, description, micro, rac, rac_time, founder_name,
         founder_anonymous, founder_listed, founder_deleted) in (
            Team.objects.filter(credit__credit_micro__gt=0).order_by("pk")
            .values_list("pk", "name", "founder_id", "created_at", "description",
                         "credit__credit_micro", "credit__rac", "credit__rac_time",
                         "founder__name", "founder__show_anonymous",
                         "founder__in_stats_exports", "founder__deleted_at")
            .iterator(chunk_size=CHUNK)):
        # The founder's name only if they are listed themselves (BOINC: if the lookup works).
        shown = founder_id is not None and founder_listed and founder_deleted is None
        yield {"id": pk, "type": BOINC_TEAM_TYPE_OTHER, "name": name,
               "userid": founder_id if shown else 0, "total_credit": _credit(micro),
               "expavg_credit": rac or 0.0, "expavg_time": rac_time or 0.0,
               "founder_name": ("Anonymous" if founder_anonymous else founder_name)
               if shown else None,
               "create_time": _unix(created), "description": description or None,
               "country": BOINC_NO_COUNTRY}


def device_totals() -> dict[int, int]:
    """Micro-credits per device (unreversed grants), in one grouped query."""
    return dict(CreditGrant.objects.filter(reversal__isnull=True, device__isnull=False)
                .order_by().values("device_id").annotate(s=Sum("amount_micro"))
                .filter(s__gt=0).values_list("device_id", "s"))


def device_averages(*, now: float) -> dict[int, float]:
    """Every device's RAC at `now` from its grants of the last ten half-lives, in one
    streamed query (the same sum as device_rac)."""
    rate = math.log(2) / HALF_LIFE_S
    totals: dict[int, float] = defaultdict(float)
    for device_id, amount, granted in (
            CreditGrant.objects.filter(reversal__isnull=True, device__isnull=False,
                                       granted_at__gte=_dt(now - 10 * HALF_LIFE_S))
            .order_by().values_list("device_id", "amount_micro", "granted_at")
            .iterator(chunk_size=CHUNK)):
        totals[device_id] += amount / MICRO * math.exp(-(now - granted.timestamp()) * rate)
    return {k: v * rate * 86400 for k, v in totals.items()}


class HostCount:
    """Hosts with credit of volunteers not deleted, listed or not (tables.xml's count)."""

    def __init__(self) -> None:
        self.n = 0


def host_rows(*, now: float | None = None, counted: HostCount | None = None) -> Iterator[dict]:
    now = time.time() if now is None else now
    totals, averages = device_totals(), device_averages(now=now)
    for (pk, volunteer_id, anonymous, listed, created, last_seen, caps, host_cpid, os_name,
         os_version, p_vendor, p_model, p_fpops, timezone) in (
            Device.objects.filter(volunteer__deleted_at__isnull=True).order_by("pk")
            .values_list("pk", "volunteer_id", "volunteer__show_anonymous",
                         "volunteer__in_stats_exports", "created_at", "last_seen",
                         "capabilities", "host_cpid", "os_name", "os_version", "p_vendor",
                         "p_model", "p_fpops", "timezone")
            .iterator(chunk_size=CHUNK)):
        micro = totals.get(pk)
        if not micro:
            continue
        if counted is not None:
            counted.n += 1
        if not listed:
            continue
        caps = caps if isinstance(caps, dict) else {}
        yield {"id": pk, "userid": None if anonymous else volunteer_id,
               "total_credit": _credit(micro), "expavg_credit": averages.get(pk, 0.0),
               "expavg_time": now, "p_vendor": p_vendor, "p_model": p_model,
               "os_name": os_name or ("mobile browser" if caps.get("mobile") else "browser"),
               "os_version": os_version, "misc": HOST_MISC,
               "create_time": _unix(created), "rpc_time": _unix(last_seen),
               "timezone": timezone or 0, "ncpus": _int(caps.get("cores"), 1),
               "p_fpops": p_fpops or 0.0, "m_nbytes": _int(caps.get("memory_mb"), 0) * 2**20,
               "host_cpid": host_cpid}


def host_deleted_rows() -> Iterator[dict]:
    for pk, host_cpid in (Device.objects.filter(volunteer__deleted_at__isnull=False)
                          .order_by("pk").values_list("pk", "host_cpid")
                          .iterator(chunk_size=CHUNK)):
        yield {"id": pk, "host_cpid": host_cpid}


def _int(value, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def device_rac(*, device_id: int, now: float) -> float:
    """RAC of a device from its grants of the last ten half-lives (continuous BOINC average)."""
    since = now - 10 * HALF_LIFE_S
    rate = math.log(2) / HALF_LIFE_S
    total = 0.0
    for amount, granted in CreditGrant.objects.filter(
            device_id=device_id, granted_at__gte=_dt(since),
            reversal__isnull=True).values_list("amount_micro", "granted_at"):
        total += amount / MICRO * math.exp(-(now - granted.timestamp()) * rate)
    return total * rate * 86400


def _dt(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)


# --- the dump --------------------------------------------------------------------------------

def _write_table(directory: Path, table: boinc_xml.Table, rows: Iterator[dict]) -> int:
    with boinc_xml.TableWriter(directory, table) as out:
        for row in rows:
            out.write(row)
    return out.count


def _tables_xml(counts: dict[str, int], total_credit: float) -> str:
    apps = list(App.objects.filter(project__is_public=True).order_by("pk")
                .values_list("title", flat=True))
    return boinc_xml.tables_xml(update_time=int(time.time()), counts=counts,
                                total_credit=total_credit, applications=apps)


def _write_dump(directory: Path) -> dict[str, int]:
    now = time.time()
    totals = (Volunteer.objects.filter(credit__credit_micro__gt=0, deleted_at__isnull=True,
                                       merged_into__isnull=True)
              .aggregate(n=Count("pk"), micro=Sum("credit__credit_micro")))
    hosts = HostCount()
    written = {
        "users": _write_table(directory, boinc_xml.USER, user_rows()),
        "users_deleted": _write_table(directory, boinc_xml.USER_DELETED, user_deleted_rows()),
        "hosts": _write_table(directory, boinc_xml.HOST, host_rows(now=now, counted=hosts)),
        "hosts_deleted": _write_table(directory, boinc_xml.HOST_DELETED, host_deleted_rows()),
        "teams": _write_table(directory, boinc_xml.TEAM, team_rows()),
    }
    # BOINC counts every user and host with credit, listed or not (db_dump.cpp, TABLE_USER).
    counts = {**written, "users": totals["n"], "hosts": hosts.n}
    (directory / "tables.xml").write_text(_tables_xml(counts, _credit(totals["micro"])),
                                          encoding="utf-8")
    return written


def _dumps_of(final: Path) -> Path:
    return final.with_name(final.name + ".dumps")


def _swap_in(final: Path, new_dump: Path) -> None:
    """Point `final` at `new_dump` with one rename of a symlink; the old dumps stay a while."""
    dumps = new_dump.parent
    if final.is_dir() and not final.is_symlink():  # a dump from before dumps were swapped
        final.rename(dumps / f"00000000T000000-legacy-{secrets.token_hex(4)}")
    link = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
    link.symlink_to(os.path.relpath(new_dump, final.parent), target_is_directory=True)
    os.replace(link, final)
    current = new_dump.name
    old = sorted((p for p in dumps.iterdir()  # not the current one, nor one being written
                  if p.name != current and not p.name.startswith(".")), key=lambda p: p.name)
    for stale in old[:max(0, len(old) - KEEP_DUMPS)]:
        shutil.rmtree(stale, ignore_errors=True)


def stats_export(directory: Path | None = None) -> dict[str, int]:
    """Write a whole dump and swap it in as `directory` (default stats_dir()); returns the
    rows written per table."""
    final = Path(directory or stats_dir())
    dumps = _dumps_of(final)
    dumps.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(tz=dt.UTC).strftime("%Y%m%dT%H%M%S")
    new_dump = dumps / f"{stamp}-{secrets.token_hex(4)}"
    partial = dumps / f".{new_dump.name}.partial"
    partial.mkdir()
    outermost = not connection.in_atomic_block
    try:
        with transaction.atomic():
            if connection.vendor == "postgresql" and outermost:
                # One snapshot for every table, so counts and rows agree.
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            counts = _write_dump(partial)
        partial.rename(new_dump)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    _swap_in(final, new_dump)
    return counts

