"""A project's credit totals are credit's ProjectCredit row now (credit 0006 copied them)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("projects", "0006_app_credibility_threshold_workunit_revalidated_at"),
        ("credit", "0006_credit_rows"),
    ]

    operations = [
        migrations.RemoveField(model_name="project", name=field)
        for field in ("credit_micro", "rac", "rac_key", "rac_time")
    ]
