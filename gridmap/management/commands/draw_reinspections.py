import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from gridmap import reinspection
from gridmap.kpi import KpiError, parse_period
from gridmap.supervision import ReinspectionDraw
from spatial.models import Ticket


class Command(BaseCommand):
    help = _("双随机抽取:从本周期已办结工单中随机抽取 10% 现场复查,并为每件随机指派未办理过它的复查人员")

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help=_("周期,如 2026-03、2026-Q1、2026-W09 或 2026"))
        parser.add_argument("--seed", type=int, help=_("随机种子(不填则随机生成并记录)"))
        parser.add_argument("--rate", type=float, default=reinspection.DEFAULT_RATE, help=_("抽取比例,默认 0.1"))
        parser.add_argument("--fake-weight", type=float, default=reinspection.DEFAULT_FAKE_WEIGHT,
                            help=_("疑似虚假整改工单的抽取权重,默认 3"))
        parser.add_argument("--replay", action="store_true", help=_("按已存的种子和候选名单复现本周期的抽取并核对"))

    def handle(self, *args, **options):
        try:
            period = parse_period(options["period"])
        except KpiError as error:
            raise CommandError(str(error)) from error
        if options["replay"]:
            record = ReinspectionDraw.objects.filter(period=period.key).first()
            if record is None:
                raise CommandError(_("周期 %(period)s 还没有抽取记录。") % {"period": period.key})
            try:
                same, rows = reinspection.replay_draw(record)
            except reinspection.ReinspectionError as error:
                raise CommandError(str(error)) from error
            self._print_rows(rows)
            if not same:
                raise CommandError(_("复现结果与存储的抽取不一致。"))
            self.stdout.write(_("复现一致:周期 %(period)s,随机种子 %(seed)s,%(n)s 件。") % {
                "period": period.key, "seed": record.seed, "n": len(rows)})
            return
        seed = options["seed"] if options["seed"] is not None else secrets.randbelow(2 ** 31)
        try:
            record = reinspection.draw(period, seed, rate=options["rate"], fake_weight=options["fake_weight"],
                                       created_by="manage.py")
        except reinspection.ReinspectionError as error:
            raise CommandError(str(error)) from error
        self._print_rows(record.reinspections.order_by("position").values_list("ticket_id", "suspected_fake",
                                                                                  "inspector_id"))
        self.stdout.write(_("周期 %(period)s:办结 %(population)s 件,抽取 %(sample)s 件,随机种子 %(seed)s。") % {
            "period": period.key, "population": record.population, "sample": record.sample, "seed": seed})

    def _print_rows(self, rows):
        rows = list(rows)
        numbers = dict(Ticket.objects.filter(pk__in=[row[0] for row in rows]).values_list("pk", "external_id"))
        names = dict(get_user_model().objects.filter(pk__in=[row[2] for row in rows]).values_list("pk", "username"))
        for position, (ticket_id, suspected, inspector_id) in enumerate(rows, start=1):
            mark = _("疑似虚假整改") if suspected else ""
            self.stdout.write(f"{position}\t{numbers.get(ticket_id, ticket_id)}\t{names.get(inspector_id)}\t{mark}")
