"""Change records are numbered per object, existing ones included: the migration numbers the
records already kept and gives an object whose history began with a change its state before it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from campaigns.models import ChangeRecord

BEFORE = [("campaigns", "0012_marketing_group_without_idempotency_keys")]
AFTER = [("campaigns", "0013_change_record_version")]

pytestmark = pytest.mark.skipif(
    connection.vendor == "postgresql",
    reason="going back to 0012 would unapply campaigns 0018, which partitions history on PostgreSQL and is "
    "irreversible there; 0013's numbering is plain Python, the same on every database",
)


def test_the_migration_numbers_each_objects_records_and_keeps_the_state_before_a_first_change(transactional_db):
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps.get_model("campaigns", "ChangeRecord")
    # Rule 1 was created in Admin; rule 2 came with the demo import, which kept no record.
    for object_id, before, after in [
        (1, None, {"name": "a", "delay": "1h"}),
        (2, {"name": "b", "delay": "1h"}, {"name": "b", "delay": "30m"}),
        (1, {"name": "a", "delay": "1h"}, {"name": "a", "delay": "2h"}),
        (2, {"name": "b", "delay": "30m"}, {"name": "b", "delay": "5m"}),
    ]:
        # The model as it was before the migration under test: no recipe can make these rows.
        old.objects.create(kind="rule", object_id=object_id, object_name=str(after["name"]), action="changed",
                           before=before, after=after)  # fmt: skip

    executor = MigrationExecutor(connection)
    executor.migrate(AFTER)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())

    def history(object_id: int) -> list[tuple[int, object]]:
        records = ChangeRecord.objects.filter(kind="rule", object_id=object_id).order_by("version")
        return [(record.version, record.after) for record in records]

    assert history(1) == [(1, {"name": "a", "delay": "1h"}), (2, {"name": "a", "delay": "2h"})]
    assert history(2) == [
        (1, {"name": "b", "delay": "1h"}),
        (2, {"name": "b", "delay": "30m"}),
        (3, {"name": "b", "delay": "5m"}),
    ]
