"""Reads for projects: what owners may see, batch progress and results, public project pages."""

import datetime as dt
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from .models import App, AppVersion, AppWheel, Batch, OutputView, Project, WorkUnit

MAX_PK = 2**63 - 1  # larger ids overflow the database's integer: treat them as unknown

# How each model reaches Project.owners.
OWNER_PATHS = {
    Project: "owners",
    App: "project__owners",
    AppVersion: "app__project__owners",
    Batch: "app_version__app__project__owners",
    WorkUnit: "batch__app_version__app__project__owners",
}


def owned(qs: QuerySet, user) -> QuerySet:
    """`qs` limited to what `user` owns; superusers see everything."""
    if user.is_superuser:
        return qs
    if not user.is_authenticated:
        return qs.none()
    path = OWNER_PATHS[qs.model]
    return qs.filter(pk__in=qs.model.objects.filter(**{path: user}).values("pk"))


def user_is_owner(user) -> bool:
    """May this account use the owners' API? Superusers, owners of a project, or creators."""
    if not user.is_authenticated or not user.is_active:
        return False
    return (user.is_superuser or user.has_perm("projects.add_project")
            or Project.objects.filter(owners=user).exists())


def project_list(*, user) -> QuerySet[Project]:
    return owned(Project.objects.all(), user).order_by("slug")


def project_get(*, user, slug: str) -> Project | None:
    return project_list(user=user).filter(slug=slug).first()


def app_list(*, user, project: str | None = None) -> QuerySet[App]:
    qs = owned(App.objects.select_related("project"), user)
    if project:
        qs = qs.filter(project__slug=project)
    return qs.order_by("name")


def app_get(*, user, name: str) -> App | None:
    return app_list(user=user).filter(name=name).first()


def app_version_list(*, app: App) -> QuerySet[AppVersion]:
    return app.versions.select_related("app").prefetch_related("wheels").order_by("number")


def app_version_get(*, app_name: str, number: int) -> AppVersion | None:
    if not 0 < number <= MAX_PK:
        return None
    return (AppVersion.objects.select_related("app")
            .filter(app__name=app_name, number=number).first())


def app_wheel_get(*, app_name: str, number: int, filename: str) -> AppWheel | None:
    if not 0 < number <= MAX_PK:
        return None
    return AppWheel.objects.filter(app_version__app__name=app_name, app_version__number=number,
                                   filename=filename).first()


def batch_list(*, user, app: str | None = None, state: str | None = None) -> QuerySet[Batch]:
    qs = owned(Batch.objects.select_related("app_version__app", "created_by"), user)
    if app:
        qs = qs.filter(app_version__app__name=app)
    if state:
        qs = qs.filter(state=state)
    return qs.order_by("-created_at", "-pk")


def batch_list_counted(*, user, app: str | None = None, state: str | None = None
                       ) -> QuerySet[Batch]:
    """batch_list with n_total, n_open, n_completed, n_failed, n_cancelled per batch."""
    def n(state_value: str) -> Count:
        return Count("workunits", filter=Q(workunits__state=state_value))

    return batch_list(user=user, app=app, state=state).annotate(
        n_total=Count("workunits"), n_open=n(WorkUnit.State.OPEN),
        n_completed=n(WorkUnit.State.COMPLETED), n_failed=n(WorkUnit.State.FAILED),
        n_cancelled=n(WorkUnit.State.CANCELLED))


def batch_get(*, user, pk: int) -> Batch | None:
    if not 0 < pk <= MAX_PK:
        return None
    return batch_list(user=user).filter(pk=pk).first()


def batch_progress(*, batch: Batch) -> dict[str, int]:
    """Counts of the batch's work units by state."""
    counts = batch.workunits.aggregate(
        total=Count("id"),
        open=Count("id", filter=Q(state=WorkUnit.State.OPEN)),
        completed=Count("id", filter=Q(state=WorkUnit.State.COMPLETED)),
        failed=Count("id", filter=Q(state=WorkUnit.State.FAILED)),
        cancelled=Count("id", filter=Q(state=WorkUnit.State.CANCELLED)),
    )
    return {key: value or 0 for key, value in counts.items()}


def batch_workunits(*, batch: Batch, state: str | None = None) -> QuerySet[WorkUnit]:
    qs = batch.workunits.order_by("seq")
    if state:
        qs = qs.filter(state=state)
    return qs


def workunits_completed(*, batch: Batch) -> QuerySet[WorkUnit]:
    return batch.workunits.filter(state=WorkUnit.State.COMPLETED).order_by("seq")


def batch_results(*, batch: Batch) -> QuerySet:
    """(seq, input, canonical output) of the batch's validated work units, in order, with
    when validation last sent each back (a device that helped settle it was caught)."""
    return workunits_completed(batch=batch).values("seq", "input", "canonical_output",
                                                    "completed_at", "revalidated_at")


# --- public project pages ------------------------------------------------------------------

def project_public_get(*, slug: str) -> Project | None:
    return Project.objects.filter(slug=slug, is_public=True).first()


def project_public_list() -> QuerySet[Project]:
    return Project.objects.filter(is_public=True).order_by("title")


def _project_units(project: Project) -> QuerySet[WorkUnit]:
    # Known-answer spot checks are the platform's, not the project's science.
    return WorkUnit.objects.filter(batch__app_version__app__project=project,
                                   known_output__isnull=True)


def project_summary(*, project: Project) -> dict[str, int]:
    counts = _project_units(project).aggregate(
        total=Count("id"),
        completed=Count("id", filter=Q(state=WorkUnit.State.COMPLETED)),
        failed=Count("id", filter=Q(state=WorkUnit.State.FAILED)),
        open=Count("id", filter=Q(state=WorkUnit.State.OPEN)),
    )
    return {key: value or 0 for key, value in counts.items()}


def project_progress_series(*, project: Project, points: int = 48,
                            now: dt.datetime | None = None) -> list[tuple[dt.datetime, int]]:
    """Cumulative validated work units over time: `points` evenly spaced samples.

    Counted in the database per interval, so the cost does not grow with the
    number of work units beyond one indexed scan.
    """
    now = now or timezone.now()
    units = _project_units(project)
    first = units.order_by("created_at").values_list("created_at", flat=True).first()
    if first is None:
        return []
    start = min(first, now - dt.timedelta(minutes=1))
    step = (now - start) / (points - 1)
    completed = units.filter(state=WorkUnit.State.COMPLETED, completed_at__isnull=False)
    buckets = completed.aggregate(**{
        f"b{i}": Count("id", filter=Q(completed_at__lte=start + step * i))
        for i in range(points)
    })
    return [(start + step * i, buckets[f"b{i}"] or 0) for i in range(points)]


def project_tile_apps(*, project: Project) -> list[App]:
    return list(project.apps.filter(output_view=OutputView.IMAGE_TILES).order_by("name"))


def project_tiles(*, app: App, after: int = 0, level: int | None = None,
                  limit: int = 256) -> tuple[list[dict[str, Any]], int]:
    """Validated tiles of an image-tiles app, oldest first, after work unit id `after`.

    Returns the tiles and the last work unit id looked at (the next `after`).
    """
    rows = (WorkUnit.objects.filter(batch__app_version__app=app, state=WorkUnit.State.COMPLETED,
                                    known_output__isnull=True, pk__gt=min(after, MAX_PK))
            .order_by("pk"))
    if level is not None:
        same = Q(input__level=level)
        rows = rows.filter(same | ~Q(input__has_key="level") if level == 0 else same)
    rows = rows.values("pk", "canonical_output")[:limit]
    tiles = []
    last = after
    for row in rows:
        last = row["pk"]
        out = row["canonical_output"]
        if not isinstance(out, dict) or not isinstance(out.get("iterations"), list):
            continue
        keys = ("x0", "y0", "width", "height", "max_iter")
        if not all(isinstance(out.get(k), int) and not isinstance(out.get(k), bool)
                   for k in keys):
            continue
        tiles.append({"id": row["pk"], **{k: out[k] for k in keys},
                      "level": out.get("level", 0), "iterations": out["iterations"]})
    return tiles, last


# AppVersion.flops_per_unit when nobody declared the workload.
DEFAULT_FLOPS_PER_UNIT = 1e9


def app_version_warnings(*, app_version: AppVersion) -> list[dict[str, str]]:
    """What an owner should fix in a version: each a {"code", "text"}."""
    warnings = []
    if app_version.flops_per_unit == DEFAULT_FLOPS_PER_UNIT:
        warnings.append({
            "code": "default_workload",
            "text": f"{app_version} declares the default workload (1e9 operations per work "
                    "unit): credit is measured against a guess. Upload a version with "
                    "flops_per_unit set to what one work unit really costs (docs/credit.md)."})
    return warnings
