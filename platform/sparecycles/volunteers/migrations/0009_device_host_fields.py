"""A device's host fields for the stats exports: host_cpid (random, unique, never changes),
the platform the browser reports, a measured speed and the time zone.

Existing rows get their own random host_cpid before the column becomes unique (AddField's
callable default would give them all the same value).
"""

import secrets

from django.db import migrations, models

import sparecycles.volunteers.models


def fill_host_cpids(apps, schema_editor):
    Device = apps.get_model("volunteers", "Device")
    for pk in Device.objects.values_list("pk", flat=True).iterator():
        Device.objects.filter(pk=pk).update(host_cpid=secrets.token_hex(16))


class Migration(migrations.Migration):

    dependencies = [
        ("volunteers", "0008_volunteer_identity"),
    ]

    operations = [
        migrations.AddField(
            model_name="device",
            name="host_cpid",
            field=models.CharField(max_length=32, null=True),
        ),
        migrations.RunPython(fill_host_cpids, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="device",
            name="host_cpid",
            field=models.CharField(default=sparecycles.volunteers.models.new_host_cpid,
                                   max_length=32, unique=True),
        ),
        migrations.AddField(
            model_name="device",
            name="os_name",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="device",
            name="os_version",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="device",
            name="p_vendor",
            field=models.CharField(blank=True, max_length=64),
        ),
        migrations.AddField(
            model_name="device",
            name="p_model",
            field=models.CharField(blank=True, max_length=128),
        ),
        migrations.AddField(
            model_name="device",
            name="p_fpops",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="device",
            name="timezone",
            field=models.IntegerField(blank=True, null=True),
        ),
    ]
