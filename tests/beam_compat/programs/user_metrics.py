"""Beam's wordcount_with_metrics: counters and a distribution updated in a DoFn, queried from the result.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import re

import millstream as beam
from millstream.metrics import Metrics
from millstream.metrics.metric import MetricsFilter
from millstream.options.pipeline_options import PipelineOptions


class WordExtractingDoFn(beam.DoFn):
    """Parse each line of input text into words."""

    def __init__(self):
        self.words_counter = Metrics.counter(self.__class__, "words")
        self.word_lengths_counter = Metrics.counter(self.__class__, "word_lengths")
        self.word_lengths_dist = Metrics.distribution(self.__class__, "word_len_dist")
        self.empty_line_counter = Metrics.counter(self.__class__, "empty_lines")

    def process(self, element):
        text_line = element.strip()
        if not text_line:
            self.empty_line_counter.inc(1)
        words = re.findall(r"[\w\']+", text_line, re.UNICODE)
        for w in words:
            self.words_counter.inc()
            self.word_lengths_counter.inc(len(w))
            self.word_lengths_dist.update(len(w))
        return words


def count_ones(word_ones):
    (word, ones) = word_ones
    Metrics.counter("wordcount", "groups").inc()
    return (word, sum(ones))


def run(lines, argv=None, capture=None):
    """Run the pipeline; returns what the metrics query reports, by metric name."""
    p = beam.Pipeline(options=PipelineOptions(argv))
    counts = (
        p
        | "Read" >> beam.Create(lines)
        | "Split" >> beam.ParDo(WordExtractingDoFn())
        | "PairWithOne" >> beam.Map(lambda x: (x, 1))
        | "Group" >> beam.GroupByKey()
        | "Count" >> beam.Map(count_ones)
    )
    if capture is not None:
        capture(counts, "counts")
    result = p.run()
    result.wait_until_finish()

    report = {}
    for name in ("words", "word_lengths", "empty_lines", "groups"):
        query_result = result.metrics().query(MetricsFilter().with_name(name))
        report[name] = [(c.key.step, c.key.metric.namespace, c.committed) for c in query_result["counters"]]
    query_result = result.metrics().query(MetricsFilter().with_name("word_len_dist"))
    report["word_len_dist"] = [
        (d.key.step, d.committed.count, d.committed.sum, d.committed.min, d.committed.max, d.committed.mean)
        for d in query_result["distributions"]
    ]
    by_namespace = result.metrics().query(MetricsFilter().with_namespace(WordExtractingDoFn))
    report["in_namespace"] = sorted(c.key.metric.name for c in by_namespace["counters"])
    by_step = result.metrics().query(MetricsFilter().with_step("Count"))
    report["in_step_count"] = sorted(c.key.metric.name for c in by_step["counters"])
    return report
