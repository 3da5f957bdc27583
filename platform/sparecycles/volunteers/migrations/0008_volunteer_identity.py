"""A volunteer's cross-project id, email verification, export consent and deletion mark.

The cross-project id is unique per row, so existing rows get their own random one before the
column becomes unique (AddField's callable default would give them all the same value).
"""

import secrets

from django.db import migrations, models

import sparecycles.volunteers.models


def fill_cross_project_ids(apps, schema_editor):
    Volunteer = apps.get_model("volunteers", "Volunteer")
    for pk in Volunteer.objects.values_list("pk", flat=True).iterator():
        Volunteer.objects.filter(pk=pk).update(cross_project_id=secrets.token_hex(16))


class Migration(migrations.Migration):

    dependencies = [
        ("volunteers", "0007_credit_moved_to_credit"),
    ]

    operations = [
        migrations.AddField(
            model_name="volunteer",
            name="cross_project_id",
            field=models.CharField(max_length=32, null=True),
        ),
        migrations.RunPython(fill_cross_project_ids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="volunteer",
            name="cross_project_id",
            field=models.CharField(default=sparecycles.volunteers.models.new_cross_project_id,
                                   max_length=32, unique=True),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="email_verified_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="in_stats_exports",
            field=models.BooleanField(
                default=True,
                help_text="Appear in the daily statistics exports that stats sites import."),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="deleted_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="volunteer",
            name="deleted_cpid",
            field=models.CharField(blank=True, default="", max_length=32),
        ),
    ]
