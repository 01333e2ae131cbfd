# The learned topic model is a classifier (the field's word); "selector" now only names query modules.
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("knowledge", "0008_reply_memory_changes"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="selectorversion", name="one_active_selector"),
        migrations.RenameModel(old_name="SelectorVersion", new_name="ClassifierVersion"),
        migrations.AddConstraint(
            model_name="classifierversion",
            constraint=models.UniqueConstraint(
                condition=models.Q(("is_active", True)), fields=("is_active",), name="one_active_classifier"
            ),
        ),
        migrations.AlterField(
            model_name="classifierversion",
            name="arrays",
            field=models.BinaryField(help_text="The classifier's numpy arrays (.npz)."),
        ),
        migrations.AlterField(
            model_name="classifierversion",
            name="meta",
            field=models.JSONField(help_text="The classifier's parameters, topics and fitting details."),
        ),
    ]
