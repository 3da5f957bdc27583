"""Credit totals and badges are credit's now (credit 0006 copied them): drop the columns
and the ranking indexes, and forget the Badge model (its table is credit_badge)."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("volunteers", "0006_volunteer_merged_into"),
        ("credit", "0006_credit_rows"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.DeleteModel(name="Badge"),
        ]),
        migrations.RemoveIndex(model_name="team", name="team_credit_rank"),
        migrations.RemoveIndex(model_name="team", name="team_rac_rank"),
        migrations.RemoveIndex(model_name="volunteer", name="volunteer_credit_rank"),
        migrations.RemoveIndex(model_name="volunteer", name="volunteer_rac_rank"),
    ] + [
        migrations.RemoveField(model_name=model, name=field)
        for model in ("team", "volunteer")
        for field in ("credit_micro", "rac", "rac_key", "rac_time")
    ]
