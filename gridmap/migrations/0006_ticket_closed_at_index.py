"""Index spatial_ticket.closed_at for the KPIs of tickets closed in a period.

The KPI queries select a period's closed tickets by ``closed_at``; without
an index each one scans the whole ticket table. The index is created here,
with the KPIs that need it, because spatial's Ticket model does not declare
it. NOTE: if spatial adds an index on closed_at, drop this one.
"""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("gridmap", "0005_placement_without_db_constraints"),
        ("spatial", "__first__"),
    ]

    operations = [
        migrations.RunSQL(
            "CREATE INDEX IF NOT EXISTS gridmap_ticket_closed_at_idx ON spatial_ticket (closed_at) "
            "WHERE closed_at IS NOT NULL",
            "DROP INDEX IF EXISTS gridmap_ticket_closed_at_idx",
        ),
    ]
