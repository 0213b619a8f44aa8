"""A value computed another way is kept beside the one before (the unique key names the
way). Going back is refused once a run holds two values of one metric computed two ways, as
the old key cannot hold them: delete one of them first.

Installations of main from 2026-12-06 02:55 to 04:50 UTC ran the ``0006`` of then, which did
this swap itself (remove ``unique_run_metric``, add the field, fill it, add
``unique_run_metric_computed_as``) before it was cut into ``0006``-``0008``: they have ``0006``
recorded as applied and the new key already in place. So the swap below changes the schema
only where the new key is missing; what the migration records in the project state is the same
everywhere, and a fresh database ends as before."""

from django.db import migrations, models
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.operations.base import Operation
from django.db.models import Count

OLD_KEY = "unique_run_metric"
NEW_KEY = "unique_run_metric_computed_as"
OLD_FIELDS = ("run", "metric", "reference_set", "backbone_id")


class SwapRunMetricKey(Operation):
    """``RemoveConstraint(OLD_KEY)`` then ``AddConstraint(NEW_KEY)``, whose database effect is
    skipped where ``NEW_KEY`` exists already (the 02:55 ``0006`` made it)."""

    reversible = True

    def __init__(self) -> None:
        self.operations = [
            migrations.RemoveConstraint(model_name="runmetric", name=OLD_KEY),
            migrations.AddConstraint(
                model_name="runmetric",
                constraint=models.UniqueConstraint(
                    fields=(*OLD_FIELDS, "computed_as"), name=NEW_KEY, nulls_distinct=False),
            ),
        ]

    def deconstruct(self):
        return self.__class__.__qualname__, [], {}

    def state_forwards(self, app_label, state) -> None:
        for operation in self.operations:
            operation.state_forwards(app_label, state)

    def database_forwards(self, app_label, schema_editor, from_state, to_state) -> None:
        model = to_state.apps.get_model(app_label, "runmetric")
        connection = schema_editor.connection
        with connection.cursor() as cursor:
            constraints = connection.introspection.get_constraints(cursor, model._meta.db_table)
        if NEW_KEY in constraints:
            return
        self._run(app_label, schema_editor, from_state, self.operations, forwards=True)

    def database_backwards(self, app_label, schema_editor, from_state, to_state) -> None:
        # Checked before any schema change: the raw IntegrityError of a failed unique index
        # says neither which values nor what to do.
        model = from_state.apps.get_model(app_label, "runmetric")
        twice = list(
            model._default_manager.using(schema_editor.connection.alias)
            .values("run_id", "metric", "reference_set_id", "backbone_id")
            .annotate(values=Count("pk")).filter(values__gt=1)
            .order_by("run_id", "metric", "reference_set_id", "backbone_id")[:20])
        if twice:
            listed = "; ".join(
                f"run {row['run_id']} {row['metric']} (reference set "
                f"{row['reference_set_id'] or 'none'}, backbone {row['backbone_id']}): "
                f"{row['values']} values" for row in twice)
            raise IrreversibleError(
                f"evaluation 0008 cannot be unapplied: the unique key before it "
                f"({OLD_KEY}) holds one value per run, metric, reference set and backbone, "
                f"and these hold values computed in several ways: {listed}"
                f"{' (first 20 shown)' if len(twice) == 20 else ''}. Keep one value of each: "
                f"delete one of them first (RunMetric rows of the same run, metric, reference "
                f"set and backbone_id, differing in computed_as), then migrate back again.")
        self._run(app_label, schema_editor, to_state, self.operations, forwards=False)

    @staticmethod
    def _run(app_label, schema_editor, first_state, operations, *, forwards: bool) -> None:
        # Each wrapped operation between the states before and after it, as a migration runs
        # its operations; backwards, in reverse order from the state before the swap.
        states = [first_state]
        for operation in operations:
            state = states[-1].clone()
            operation.state_forwards(app_label, state)
            states.append(state)
        steps = list(zip(operations, states[:-1], states[1:], strict=True))
        for operation, before, after in (steps if forwards else reversed(steps)):
            if forwards:
                operation.database_forwards(app_label, schema_editor, before, after)
            else:
                operation.database_backwards(app_label, schema_editor, after, before)

    def describe(self) -> str:
        return (f"Remove constraint {OLD_KEY} and add {NEW_KEY} on model runmetric (the "
                f"schema change skipped where {NEW_KEY} exists)")

    @property
    def migration_name_fragment(self) -> str:
        return "run_metric_unique_computed_as"


class Migration(migrations.Migration):

    dependencies = [
        ('evaluation', '0007_fill_run_metric_computed_as'),
    ]

    operations = [
        SwapRunMetricKey(),
    ]
