"""Beam's wordcount (wordcount_minimal / wordcount), reading lines from beam.Create instead of ReadFromText.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import re

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions


class WordExtractingDoFn(beam.DoFn):
    """Parse each line of input text into words."""

    def process(self, element):
        return re.findall(r"[\w\']+", element, re.UNICODE)


def format_result(word, count):
    return f"{word}: {count}"


def run(lines, argv=None, capture=None):
    """Count the words of `lines`; `capture(pcoll, name)` lets a test see the formatted output."""
    with beam.Pipeline(options=PipelineOptions(argv)) as p:
        counts = (
            p
            | "Read" >> beam.Create(lines)
            | "Split" >> beam.ParDo(WordExtractingDoFn())
            | "PairWithOne" >> beam.Map(lambda x: (x, 1))
            | "GroupAndSum" >> beam.CombinePerKey(sum)
        )
        output = counts | "Format" >> beam.MapTuple(format_result)
        # wordcount_minimal's variant: a lambda split, GroupByKey then a sum over the grouped ones.
        minimal = (
            p
            | "ReadAgain" >> beam.Create(lines)
            | "SplitMinimal" >> beam.FlatMap(lambda x: re.findall(r"[A-Za-z\']+", x))
            | "PairWithOneMinimal" >> beam.Map(lambda x: (x, 1))
            | "Group" >> beam.GroupByKey()
            | "Sum" >> beam.Map(lambda word_ones: (word_ones[0], sum(word_ones[1])))
            | "FormatMinimal" >> beam.Map(lambda word_count: f"{word_count[0]}: {word_count[1]}")
        )
        if capture is not None:
            capture(output, "wordcount")
            capture(minimal, "minimal")
