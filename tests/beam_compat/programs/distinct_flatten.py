"""Distinct, Flatten (tuples, lists, an empty input) and the keyed helpers Keys, Values, KvSwap, WithKeys.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions
from millstream.testing.util import assert_that, equal_to


def run(argv=None, capture=None):
    with beam.Pipeline(options=PipelineOptions(argv)) as p:
        a = p | "A" >> beam.Create([1, 2, 2, 3])
        b = p | "B" >> beam.Create([3, 4])
        empty = p | "Empty" >> beam.Create([])
        merged = (a, b, empty) | "Merge" >> beam.Flatten()
        merged_list = [a, b] | "MergeList" >> beam.Flatten()
        distinct = merged | "Distinct" >> beam.Distinct()
        assert_that(distinct, equal_to([1, 2, 3, 4]), label="CheckDistinct")
        tuples = p | "Tuples" >> beam.Create([("x", 1), ("x", 1), ("y", 2), ("x", 2)])
        distinct_tuples = tuples | "DistinctTuples" >> beam.Distinct()
        keys = tuples | beam.Keys()
        values = tuples | beam.Values()
        swapped = tuples | beam.KvSwap()
        keyed = a | beam.WithKeys(lambda x: x % 2)
        if capture is not None:
            capture(merged, "merged")
            capture(merged_list, "merged_list")
            capture(distinct, "distinct")
            capture(distinct_tuples, "distinct_tuples")
            capture(keys, "keys")
            capture(values, "values")
            capture(swapped, "swapped")
            capture(keyed, "keyed")
