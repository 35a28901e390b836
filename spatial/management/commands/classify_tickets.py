"""Label tickets with a stored classifier version."""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spatial.analysis import classify
from spatial.models import ClassifierVersion


class Command(BaseCommand):
    help = gettext_lazy("用已保存的分类模型(默认最新版本)为未标注的工单分类;低置信度的进入复核队列。")

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--model-version", dest="model_version", type=int, help=_("模型版本号,默认最新"))
        parser.add_argument("--include-labelled", action="store_true",
                            help=_("也检查已有标注的工单,与预测不一致的进入复核队列(不改其类型)"))

    def handle(self, *args, **options):
        version = None
        if options["model_version"] is not None:
            version = ClassifierVersion.objects.filter(version=options["model_version"]).first()
            if version is None:
                raise CommandError(_("找不到分类模型 v%(version)s。") % {"version": options["model_version"]})
        try:
            labelled, queued = classify.classify_tickets(version, include_labelled=options["include_labelled"])
        except classify.ClassifierError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(_("已分类 %(labelled)s 张工单,%(queued)s 张进入复核队列。")
                          % {"labelled": labelled, "queued": queued})
