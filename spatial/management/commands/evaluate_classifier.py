"""Print stratified k-fold accuracy and macro-F1 of the ticket classifier on a labelled file."""
import time

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from spatial.analysis import classify


class Command(BaseCommand):
    help = gettext_lazy("在已标注的 CSV 或 Excel 文件上做分层 K 折交叉验证,输出分类准确率和宏平均 F1。")

    def create_parser(self, prog_name, subcommand, **kwargs):
        self.help = str(self.help)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("path", help=_("已标注文件路径(CSV 或 Excel)"))
        parser.add_argument("--folds", type=int, default=classify.DEFAULT_FOLDS, help=_("折数,默认 5"))
        parser.add_argument("--seed", type=int, default=classify.DEFAULT_SEED, help=_("随机种子,默认 0"))
        parser.add_argument("--features", choices=classify.FEATURE_SETS, default=classify.DEFAULT_FEATURES,
                            help=_("特征:chars(单字和双字)或 words+chars(另加 jieba 分词)"))
        parser.add_argument("--title-column", help=_("标题列名,默认自动识别(留言主题、title…)"))
        parser.add_argument("--body-column", help=_("正文列名,默认自动识别(留言详情、body…)"))
        parser.add_argument("--label-column", help=_("类别列名,默认自动识别(一级分类、label…)"))

    def handle(self, *args, **options):
        if options["folds"] < 2:
            raise CommandError(_("--folds 应为不小于 2 的整数。"))
        started = time.perf_counter()
        try:
            texts, labels = classify.read_labelled_file(
                options["path"], options["title_column"], options["body_column"], options["label_column"])
            figures = classify.cross_validate_labels(texts, labels, options["folds"], options["seed"],
                                                     where=options["path"], features=options["features"])
        except classify.ClassifierError as error:
            raise CommandError(str(error)) from error
        majority = max(labels.count(label) for label in set(labels)) / len(labels)
        self.stdout.write(_("样本 %(samples)s 条,%(classes)s 个类别,分层 %(folds)s 折交叉验证(种子 %(seed)s)")
                          % {"samples": figures["samples"], "classes": len(figures["classes"]),
                             "folds": figures["folds"], "seed": options["seed"]})
        self.stdout.write(_("准确率 %(mean).3f ± %(std).3f") % {"mean": figures["accuracy"],
                                                                 "std": figures["accuracy_std"]})
        self.stdout.write(_("宏平均 F1 %(mean).3f ± %(std).3f") % {"mean": figures["macro_f1"],
                                                                   "std": figures["macro_f1_std"]})
        self.stdout.write(_("多数类基线准确率 %(value).3f") % {"value": majority})
        self.stdout.write(_("算法:%(algorithm)s;耗时 %(seconds).1f 秒") % {
            "algorithm": classify.algorithm_name(options["features"]), "seconds": time.perf_counter() - started})
