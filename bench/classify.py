"""Benchmark the trainable classifier: classification of 100,000 tickets.

``python -m bench classify [--tickets N] [--seed N] [--chars N] [--features chars|words+chars]``

Texts are real citizen messages (the 495 labelled ones in
``../shared/data/cn/complaints_labelled.csv``, or ``FIREGRID_SHARED_DATA``)
drawn with replacement and cut to ``--chars`` characters of body after the
title, the length of a typical hotline ticket. The model (``--features``, characters by
default) is trained once on the 495 messages (not timed as part of the target). The timed FireGrid path
is ``classify.predict_texts`` on all texts: jieba words, character
n-grams, calibrated linear SVM and the highest probability. The baseline,
run in the same process on the same texts, is the keyword rules of
``spatial.taxonomy.classify_by_keywords``. Target: under 30 s.
"""
import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from spatial.analysis import classify
from spatial.taxonomy import classify_by_keywords

TARGET_S = 30.0


def main(argv):
    parser = argparse.ArgumentParser(prog="python -m bench classify", description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=100_000, help="number of texts to classify")
    parser.add_argument("--seed", type=int, default=20261204, help="seed of the draw with replacement")
    parser.add_argument("--chars", type=int, default=120, help="characters of body kept after the title")
    parser.add_argument("--features", choices=classify.FEATURE_SETS, default=classify.DEFAULT_FEATURES,
                        help="feature set of the classifier (words+chars adds jieba words)")
    args = parser.parse_args(argv)

    data_dir = Path(os.environ.get("FIREGRID_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    path = data_dir / "cn" / "complaints_labelled.csv"
    if not path.is_file():
        print(f"labelled messages {path} not found; set FIREGRID_SHARED_DATA", file=sys.stderr)
        return 2
    texts, labels = classify.read_labelled_file(path)

    started = time.perf_counter()
    model = classify.build_pipeline(features=args.features).fit(np.asarray(texts, dtype=object), np.asarray(labels, dtype=object))
    train_s = time.perf_counter() - started

    rng = np.random.default_rng(args.seed)
    title_length = [len(text.split(" ")[0]) for text in texts]
    sample = rng.integers(0, len(texts), args.tickets)
    tickets = [classify.compose_text(texts[i].split(" ")[0], texts[i][title_length[i] * 3 + 3:][:args.chars])
               for i in sample]
    mean_chars = np.mean([len(text) for text in tickets])
    print(f"texts: {len(tickets)} (mean {mean_chars:.0f} characters with the title repeated), "
          f"training on {len(texts)} messages took {train_s:.1f} s")

    started = time.perf_counter()
    predicted, confidence = classify.predict_texts(model, tickets)
    firegrid_s = time.perf_counter() - started
    print(f"FireGrid classifier ({classify.algorithm_name(args.features)}): {firegrid_s:.1f} s = {len(tickets) / firegrid_s:,.0f} texts/s, "
          f"mean confidence {confidence.mean():.2f}")

    started = time.perf_counter()
    keyword_labels = [classify_by_keywords(text) for text in tickets]
    baseline_s = time.perf_counter() - started
    print(f"baseline keyword rules: {baseline_s:.1f} s = {len(tickets) / baseline_s:,.0f} texts/s "
          f"({len(set(keyword_labels))} categories assigned)")
    print(f"ratio classifier / keyword time: {firegrid_s / baseline_s:.1f}")

    verdict = "meets" if firegrid_s < TARGET_S else "misses"
    print(f"summary: classified {len(tickets)} tickets in {firegrid_s:.1f} s ({verdict} the {TARGET_S:.0f} s target), "
          f"{firegrid_s / baseline_s:.1f} times the keyword baseline's {baseline_s:.1f} s")
    return 0
