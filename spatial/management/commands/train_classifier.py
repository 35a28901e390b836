"""Train a new classifier version on the labelled tickets and optionally label the rest."""
from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spatial.analysis import classify


class Command(BaseCommand):
    help = gettext_lazy(
        "用导入时带问题类型或经人工复核的工单训练新版本的文本分类模型(交叉验证后保存),"
        "并可立即为其余工单分类;置信度低于阈值的进入复核队列。"
    )

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("--threshold", type=float, default=classify.DEFAULT_THRESHOLD,
                            help=_("置信度阈值(0 到 1),低于它的预测进入复核队列,默认 0.6"))
        parser.add_argument("--folds", type=int, default=classify.DEFAULT_FOLDS, help=_("交叉验证折数,默认 5"))
        parser.add_argument("--features", choices=classify.FEATURE_SETS, default=classify.DEFAULT_FEATURES,
                            help=_("特征:chars(单字和双字)或 words+chars(另加 jieba 分词)"))
        parser.add_argument("--classify", action="store_true", help=_("训练后立即为未标注的工单分类"))

    def handle(self, *args, **options):
        try:
            version = classify.train_classifier(threshold=options["threshold"], folds=options["folds"],
                                                 features=options["features"])
        except classify.ClassifierError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(_("已保存模型 v%(version)s:%(count)s 条训练样本,交叉验证准确率 %(accuracy).3f,"
                            "宏平均 F1 %(f1).3f。") % {"version": version.version, "count": version.training_count,
                                                   "accuracy": version.cv_accuracy, "f1": version.cv_macro_f1})
        if options["classify"]:
            labelled, queued = classify.classify_tickets(version)
            self.stdout.write(_("已分类 %(labelled)s 张工单,%(queued)s 张进入复核队列。")
                              % {"labelled": labelled, "queued": queued})
