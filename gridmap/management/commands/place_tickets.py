from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from gridmap.dispatch import dispatch_ticket, place_tickets
from spatial.models import ImportBatch, Ticket, TicketStatus


class Command(BaseCommand):
    help = _("把有位置的工单落到最小的责任网格(整批一次完成);可选地按派单规则派出尚未派单的工单")

    def add_arguments(self, parser):
        parser.add_argument("--batch", type=int, help=_("只处理这个导入批次的工单(批次编号)"))
        parser.add_argument("--max-distance-m", type=float,
                            help=_("就近落格的最大距离(米),默认取 FIREGRID_GRID_NEAREST_M"))
        parser.add_argument("--dispatch", action="store_true",
                            help=_("落格后按派单规则派出状态为“已受理”且尚未派单的工单"))

    def handle(self, *args, **options):
        batch = options["batch"]
        if batch is not None and not ImportBatch.objects.filter(pk=batch).exists():
            raise CommandError(_("没有编号为 %(batch)s 的导入批次;请用 import_tickets 的输出核对编号。") % {"batch": batch})
        counts = place_tickets(batch_id=batch, max_distance_m=options["max_distance_m"])
        self.stdout.write(_("落在网格内 %(contained)s 件,就近落格 %(nearest)s 件,兜底到县级网格 %(county)s 件") % counts)
        if not options["dispatch"]:
            return
        tickets = Ticket.objects.filter(status=TicketStatus.RECEIVED, handling__isnull=True)
        if batch is not None:
            tickets = tickets.filter(batch_id=batch)
        dispatched = queued = 0
        for ticket in tickets.order_by("pk").iterator(chunk_size=500):
            handling = dispatch_ticket(ticket)
            if handling.in_dispatch_queue:
                queued += 1
            else:
                dispatched += 1
        self.stdout.write(_("已派单 %(dispatched)s 件,转人工派单队列 %(queued)s 件") % {
            "dispatched": dispatched, "queued": queued})
