from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_profile_time_zone"),
    ]

    operations = [
        migrations.AddField(
            model_name="profile",
            name="language",
            field=models.CharField(
                blank=True,
                choices=[("en", "English"), ("zh-hans", "简体中文")],
                help_text="The language of the desk's pages; blank: the browser's.",
                max_length=16,
                verbose_name="language",
            ),
        ),
        migrations.AlterField(
            model_name="profile",
            name="time_zone",
            field=models.CharField(
                blank=True,
                help_text="IANA time zone for reports, e.g. Europe/Paris; blank: the site's.",
                max_length=64,
                verbose_name="time zone",
            ),
        ),
    ]
