"""Beam programming guide, side inputs: a singleton factor, a mean word length, lists, dicts and iterables.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import millstream as beam
from millstream import pvalue
from millstream.options.pipeline_options import PipelineOptions

WORDS = ["a", "bb", "ccc", "dddd", "eeeee", "ffffff", "ggggggg"]


def filter_using_length(word, lower_bound, upper_bound=float("inf")):
    if lower_bound <= len(word) <= upper_bound:
        yield word


class Scale(beam.DoFn):
    def process(self, element, factor, offsets):
        for offset in offsets:
            yield element * factor + offset


def run(argv=None, capture=None):
    with beam.Pipeline(options=PipelineOptions(argv)) as p:
        numbers = p | "Numbers" >> beam.Create([1, 2, 3, 4])
        factor = p | "Factor" >> beam.Create([10])
        multiplied = numbers | "Multiply" >> beam.Map(lambda x, f: x * f, pvalue.AsSingleton(factor))

        words = p | "CreateWords" >> beam.Create(WORDS)
        small_words = words | "small" >> beam.FlatMap(filter_using_length, 0, 3)
        avg_word_len = words | beam.Map(len) | beam.CombineGlobally(beam.combiners.MeanCombineFn())
        larger_than_average = words | "large" >> beam.FlatMap(
            filter_using_length, lower_bound=pvalue.AsSingleton(avg_word_len)
        )

        table = p | "Table" >> beam.Create([("a", 1), ("b", 2)])
        looked_up = (
            p
            | "Keys" >> beam.Create(["a", "b", "a"])
            | "Lookup" >> beam.Map(lambda k, d: (k, d[k]), d=pvalue.AsDict(table))
        )
        offsets = p | "Offsets" >> beam.Create([0, 100])
        scaled = numbers | "Scale" >> beam.ParDo(Scale(), pvalue.AsSingleton(factor), pvalue.AsIter(offsets))
        with_all = numbers | "WithAll" >> beam.Map(
            lambda x, all_words: (x, sorted(all_words)), pvalue.AsList(words)
        )
        if capture is not None:
            capture(multiplied, "multiplied")
            capture(small_words, "small_words")
            capture(larger_than_average, "larger_than_average")
            capture(looked_up, "looked_up")
            capture(scaled, "scaled")
            capture(with_all, "with_all")
