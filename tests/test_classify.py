"""Trainable ticket classifier: evaluation, versions, labelling, review queue."""
import datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from spatial.analysis import classify
from spatial.models import CategorySource, ClassifierVersion, ReviewItem, ReviewStatus, Ticket

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))


def load_labelled_tickets(fixtures_dir):
    texts, labels = classify.read_labelled_file(fixtures_dir / "analytics" / "labelled_small.csv")
    for number, (text, label) in enumerate(zip(texts, labels)):
        Ticket.objects.create(source_system="test", external_id=f"L{number}", description=text, category=label,
                              category_source=CategorySource.IMPORTED,
                              received_at=datetime.datetime(2024, 3, 1, tzinfo=SHANGHAI))


def unlabelled(number, text):
    return Ticket.objects.create(source_system="test", external_id=f"U{number}", description=text,
                                 category="other", category_source=CategorySource.KEYWORD,
                                 received_at=datetime.datetime(2024, 3, 2, tzinfo=SHANGHAI))


def test_compose_text_repeats_title():
    assert classify.compose_text("楼道 堵塞", "车辆\n\t占道") == "楼道 堵塞 楼道 堵塞 楼道 堵塞 车辆 占道"
    assert classify.compose_text(None, "正文") == "正文"


def test_read_labelled_file_drops_unlabelled_rows(fixtures_dir):
    texts, labels = classify.read_labelled_file(fixtures_dir / "analytics" / "labelled_small.csv")
    assert len(texts) == 15
    assert labels.count("fire_lane") == 5
    assert texts[0].startswith("楼道堆放杂物 楼道堆放杂物 楼道堆放杂物 三单元")


def test_read_labelled_file_errors(fixtures_dir, tmp_path):
    with pytest.raises(classify.ClassifierError, match="找不到标注文件"):
        classify.read_labelled_file(tmp_path / "missing.csv")
    with pytest.raises(classify.ClassifierError, match="没有列 “类型”"):
        classify.read_labelled_file(fixtures_dir / "analytics" / "labelled_small.csv", label_column="类型")
    (tmp_path / "nobody.csv").write_text("标题,类别\n甲,乙\n", encoding="utf-8")
    with pytest.raises(classify.ClassifierError, match="找不到正文列"):
        classify.read_labelled_file(tmp_path / "nobody.csv")


def test_cross_validation_rejects_small_classes():
    with pytest.raises(classify.ClassifierError, match="b\\(2\\)"):
        classify.cross_validate_labels(["甲"] * 6 + ["乙"] * 2, ["a"] * 6 + ["b"] * 2, folds=5)


def test_evaluate_classifier_command_small(fixtures_dir):
    out = StringIO()
    call_command("evaluate_classifier", str(fixtures_dir / "analytics" / "labelled_small.csv"), "--folds", "5",
                 stdout=out)
    text = out.getvalue()
    assert "样本 15 条,3 个类别,分层 5 折交叉验证" in text
    assert "多数类基线准确率 0.333" in text


def test_evaluate_classifier_real_messages(shared_data):
    # Measured with seed 0 on 495 messages: accuracy 0.824, macro-F1 0.819.
    texts, labels = classify.read_labelled_file(shared_data / "cn" / "complaints_labelled.csv")
    assert len(texts) == 495
    figures = classify.cross_validate_labels(texts, labels, folds=5, seed=0)
    assert len(figures["classes"]) == 7
    assert figures["accuracy"] == pytest.approx(0.824, abs=0.005)
    assert figures["macro_f1"] == pytest.approx(0.819, abs=0.005)


def test_word_features_pipeline(fixtures_dir, settings, tmp_path):
    settings.VAR_DIR = tmp_path
    texts, labels = classify.read_labelled_file(fixtures_dir / "analytics" / "labelled_small.csv")
    model = classify.build_pipeline(features="words+chars").fit(texts, labels)
    predicted, _confidence = classify.predict_texts(model, ["小区消防通道停满私家车"])
    assert predicted.tolist() == ["fire_lane"]
    assert classify.algorithm_name("words+chars").startswith("tfidf(jieba words + chars 1-2)")
    with pytest.raises(classify.ClassifierError, match="特征 “bigrams” 无效"):
        classify.build_pipeline(features="bigrams")


@pytest.mark.django_db
def test_train_classify_and_review(fixtures_dir):
    load_labelled_tickets(fixtures_dir)
    charging = unlabelled(1, "楼下有人飞线给电动车充电")
    blocked = unlabelled(2, "消防通道被私家车堵塞")

    version = classify.train_classifier(threshold=0.5)
    assert version.version == 1
    assert version.training_count == 15
    assert version.classes == ["ebike_charging", "facility_fault", "fire_lane"]

    labelled, queued = classify.classify_tickets(version)
    assert labelled == 2
    charging.refresh_from_db()
    blocked.refresh_from_db()
    assert charging.category == "ebike_charging"
    assert blocked.category == "fire_lane"
    assert charging.category_source == CategorySource.MODEL
    assert charging.category_model_id == version.pk
    assert 0.5 <= charging.category_confidence <= 1
    assert ReviewItem.objects.count() == queued
    # Imported labels are untouched.
    assert Ticket.objects.filter(category_source=CategorySource.IMPORTED).count() == 15

    strict = classify.train_classifier(threshold=0.999)
    assert strict.version == 2
    _labelled, queued = classify.classify_tickets(strict)
    assert queued == 2
    item = ReviewItem.objects.get(ticket=blocked, model=strict)
    classify.resolve_review(item, "facility_fault", "张三")
    blocked.refresh_from_db()
    item.refresh_from_db()
    assert blocked.category == "facility_fault"
    assert blocked.category_source == CategorySource.REVIEW
    assert item.status == ReviewStatus.CORRECTED
    assert item.reviewed_by == "张三"

    # The reviewed ticket now counts as a label for the next version.
    assert classify.labelled_tickets().count() == 16


@pytest.mark.django_db
def test_stored_model_round_trip(fixtures_dir):
    load_labelled_tickets(fixtures_dir)
    version = classify.train_classifier()
    model = classify.load_model(ClassifierVersion.objects.get(pk=version.pk))
    predicted, confidence = classify.predict_texts(model, ["灭火器 过期 灭火器"])
    assert predicted.tolist() == ["facility_fault"]
    assert confidence.shape == (1,)


@pytest.mark.django_db
def test_train_without_labels_fails():
    with pytest.raises(CommandError, match="没有已标注的工单"):
        call_command("train_classifier", stdout=StringIO())
    with pytest.raises(CommandError, match="还没有训练好的分类模型"):
        call_command("classify_tickets", stdout=StringIO())
    with pytest.raises(CommandError, match="找不到分类模型 v7"):
        call_command("classify_tickets", "--model-version", "7", stdout=StringIO())


@pytest.mark.django_db
def test_train_classifier_command(fixtures_dir):
    load_labelled_tickets(fixtures_dir)
    unlabelled(1, "楼道灭火器被偷")
    out = StringIO()
    call_command("train_classifier", "--classify", stdout=out)
    assert "已保存模型 v1:15 条训练样本" in out.getvalue()
    assert "已分类 1 张工单" in out.getvalue()
    with pytest.raises(CommandError, match="置信度阈值"):
        call_command("train_classifier", "--threshold", "1.5", stdout=StringIO())
