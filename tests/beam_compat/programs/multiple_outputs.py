"""Beam programming guide, additional outputs: with_outputs, TaggedOutput, and undeclared tags.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import millstream as beam
from millstream import pvalue
from millstream.options.pipeline_options import PipelineOptions

WORDS = ["a", "xb", "ccc", "xdddd", "e", "xf"]


class ProcessWords(beam.DoFn):
    def process(self, element, cutoff_length, marker):
        if len(element) <= cutoff_length:
            # Emit this short word to the main output.
            yield element
        else:
            # Emit this word's long length to the 'above_cutoff_lengths' output.
            yield pvalue.TaggedOutput("above_cutoff_lengths", len(element))
        if element.startswith(marker):
            # Emit this word to a different output with the 'marked strings' tag.
            yield pvalue.TaggedOutput("marked strings", element)


def even_odd(x):
    yield pvalue.TaggedOutput("odd" if x % 2 else "even", x)
    if x % 10 == 0:
        yield x


def run(argv=None, capture=None):
    with beam.Pipeline(options=PipelineOptions(argv)) as p:
        words = p | "Words" >> beam.Create(WORDS)
        results = words | "ByName" >> beam.ParDo(ProcessWords(), cutoff_length=2, marker="x").with_outputs(
            "above_cutoff_lengths", "marked strings", main="below_cutoff_strings"
        )
        below_cutoff_strings = results.below_cutoff_strings
        above_cutoff_lengths = results.above_cutoff_lengths
        marked_strings = results["marked strings"]

        # The same outputs by unpacking: main first, then the declared tags in order.
        below, above, marked = words | "ByUnpacking" >> beam.ParDo(
            ProcessWords(), cutoff_length=2, marker="x"
        ).with_outputs("above_cutoff_lengths", "marked strings", main="below_cutoff_strings")

        numbers = p | "Numbers" >> beam.Create([1, 2, 3, 10, 20, 25])
        parity = numbers | "Parity" >> beam.FlatMap(even_odd).with_outputs()
        evens = parity.even
        odds = parity.odd
        tens = parity[None]
        if capture is not None:
            capture(below_cutoff_strings, "below")
            capture(above_cutoff_lengths, "above")
            capture(marked_strings, "marked")
            capture((below, above, marked) | beam.Flatten(), "unpacked")
            capture(evens, "evens")
            capture(odds, "odds")
            capture(tens, "tens")
