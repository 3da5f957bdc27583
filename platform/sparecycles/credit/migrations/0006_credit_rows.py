"""Credit owns its totals: VolunteerCredit, TeamCredit and ProjectCredit rows, one per owner,
made from the columns that volunteers.Volunteer, volunteers.Team and projects.Project held
(every total, RAC and ranking key copied as it was); and Badge moves here from volunteers
(its table renamed, its rows kept). volunteers 0007 and projects 0007 then drop the columns.
Reversible: going back copies the rows into the re-added columns.
"""

import django.db.models.deletion
from django.db import migrations, models

FIELDS = ("credit_micro", "rac", "rac_time", "rac_key")
OWNERS = [  # (owner app, owner model, credit's row model)
    ("volunteers", "Volunteer", "VolunteerCredit"),
    ("volunteers", "Team", "TeamCredit"),
    ("projects", "Project", "ProjectCredit"),
]
CHUNK = 2000


def copy_totals(apps, schema_editor):
    db = schema_editor.connection.alias
    for app, owner, row in OWNERS:
        Owner, Row = apps.get_model(app, owner), apps.get_model("credit", row)
        batch = []
        for pk, *values in (Owner.objects.using(db).order_by("pk")
                            .values_list("pk", *FIELDS).iterator(chunk_size=CHUNK)):
            batch.append(Row(pk=pk, **dict(zip(FIELDS, values, strict=True))))
            if len(batch) == CHUNK:
                Row.objects.using(db).bulk_create(batch)
                batch = []
        Row.objects.using(db).bulk_create(batch)


def restore_totals(apps, schema_editor):
    db = schema_editor.connection.alias
    for app, owner, row in OWNERS:
        Owner, Row = apps.get_model(app, owner), apps.get_model("credit", row)
        batch = []
        for pk, *values in (Row.objects.using(db).order_by("pk")
                            .values_list("pk", *FIELDS).iterator(chunk_size=CHUNK)):
            batch.append(Owner(pk=pk, **dict(zip(FIELDS, values, strict=True))))
            if len(batch) == CHUNK:
                Owner.objects.using(db).bulk_update(batch, FIELDS)
                batch = []
        Owner.objects.using(db).bulk_update(batch, FIELDS)


def totals(owner_field):
    return [
        ("credit_micro", models.BigIntegerField(db_index=True, default=0)),
        ("rac", models.FloatField(default=0)),
        ("rac_time", models.FloatField(blank=True, null=True)),
        ("rac_key", models.FloatField(db_index=True, default=-1000000000.0)),
        owner_field,
    ]


class Migration(migrations.Migration):

    dependencies = [
        ("credit", "0005_merge_0004_creditreversal_0004_flops_approval"),
        ("projects", "0006_app_credibility_threshold_workunit_revalidated_at"),
        ("volunteers", "0006_volunteer_merged_into"),
    ]

    operations = [
        migrations.CreateModel(
            name="VolunteerCredit",
            fields=totals(("volunteer", models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                related_name="credit", serialize=False, to="volunteers.volunteer"))),
            options={"indexes": [
                models.Index(fields=["-credit_micro", "volunteer"], name="vcredit_credit_rank"),
                models.Index(fields=["-rac_key", "volunteer"], name="vcredit_rac_rank"),
            ]},
        ),
        migrations.CreateModel(
            name="TeamCredit",
            fields=totals(("team", models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                related_name="credit", serialize=False, to="volunteers.team"))),
            options={"indexes": [
                models.Index(fields=["-credit_micro", "team"], name="tcredit_credit_rank"),
                models.Index(fields=["-rac_key", "team"], name="tcredit_rac_rank"),
            ]},
        ),
        migrations.CreateModel(
            name="ProjectCredit",
            fields=totals(("project", models.OneToOneField(
                on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                related_name="credit", serialize=False, to="projects.project"))),
            options={"indexes": [
                models.Index(fields=["-credit_micro", "project"], name="pcredit_credit_rank"),
            ]},
        ),
        migrations.RunPython(copy_totals, restore_totals),
        # Badge: the same table, now credit's (volunteers 0007 forgets its own state of it).
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.CreateModel(
                name="Badge",
                fields=[
                    ("id", models.BigAutoField(auto_created=True, primary_key=True,
                                               serialize=False, verbose_name="ID")),
                    ("kind", models.CharField(choices=[
                        ("first_valid", "First valid result"), ("credit_1k", "1,000 credit"),
                        ("credit_10k", "10,000 credit"), ("credit_100k", "100,000 credit"),
                        ("streak_7", "7-day streak"), ("streak_30", "30-day streak"),
                    ], max_length=20)),
                    ("awarded_at", models.DateTimeField()),
                    ("volunteer", models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="badges",
                        to="volunteers.volunteer")),
                ],
                options={
                    "ordering": ["awarded_at"],
                    "constraints": [models.UniqueConstraint(fields=("volunteer", "kind"),
                                                            name="badge_once")],
                    "db_table": "volunteers_badge",
                },
            ),
        ]),
        migrations.AlterModelTable(name="badge", table=None),  # volunteers_badge -> credit_badge
    ]
