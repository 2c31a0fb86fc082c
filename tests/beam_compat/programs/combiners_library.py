"""Beam's combiner library on small inputs: Count, Mean, Top, Sample, ToList, ToDict, ToSet.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions
from millstream.testing.util import assert_that, equal_to
from millstream.transforms import combiners

NUMBERS = [5, 1, 9, 3, 7, 9, 2]
PAIRS = [("a", 3), ("b", 10), ("a", 1), ("a", 7), ("b", 4), ("c", 5)]
WORDS = ["pear", "fig", "banana", "kiwis", "fig"]
CAPITALS = [("fr", "Paris"), ("it", "Rome"), ("jp", "Tokyo")]


def run(argv=None, capture=None):
    with beam.Pipeline(options=PipelineOptions(argv)) as p:
        numbers = p | "Numbers" >> beam.Create(NUMBERS)
        pairs = p | "Pairs" >> beam.Create(PAIRS)
        words = p | "Words" >> beam.Create(WORDS)
        capitals = p | "Capitals" >> beam.Create(CAPITALS)

        outputs = {
            "count_globally": numbers | "CountGlobally" >> combiners.Count.Globally(),
            "count_per_key": pairs | "CountPerKey" >> combiners.Count.PerKey(),
            "count_per_element": words | "CountPerElement" >> combiners.Count.PerElement(),
            "mean_globally": numbers | "MeanGlobally" >> combiners.Mean.Globally(),
            "mean_per_key": pairs | "MeanPerKey" >> combiners.Mean.PerKey(),
            "top_of": numbers | "TopOf" >> combiners.Top.Of(3),
            "top_largest": numbers | "TopLargest" >> combiners.Top.Largest(2),
            "top_smallest": numbers | "TopSmallest" >> combiners.Top.Smallest(2),
            "top_by_len": words | "TopByLen" >> combiners.Top.Of(2, key=len),
            "top_reverse": numbers | "TopReverse" >> combiners.Top.Of(2, reverse=True),
            "top_per_key": pairs | "TopPerKey" >> combiners.Top.PerKey(2),
            "largest_per_key": pairs | "LargestPerKey" >> combiners.Top.LargestPerKey(1),
            "smallest_per_key": pairs | "SmallestPerKey" >> combiners.Top.SmallestPerKey(1),
            "to_list": numbers | "ToList" >> combiners.ToList(),
            "to_dict": capitals | "ToDict" >> combiners.ToDict(),
            "to_set": words | "ToSet" >> combiners.ToSet(),
            "sample": numbers | "Sample" >> combiners.Sample.FixedSizeGlobally(3),
            "sample_per_key": pairs | "SamplePerKey" >> combiners.Sample.FixedSizePerKey(2),
            "beam_combiners_count": words | "BeamCount" >> beam.combiners.Count.Globally(),
        }
        # Top's lists are ordered (largest first): equal_to compares the inner lists exactly.
        assert_that(outputs["top_of"], equal_to([[9, 9, 7]]), label="CheckTopOf")
        assert_that(outputs["top_smallest"], equal_to([[1, 2]]), label="CheckSmallest")
        assert_that(
            outputs["top_per_key"], equal_to([("a", [7, 3]), ("b", [10, 4]), ("c", [5])]), label="CheckPK"
        )
        if capture is not None:
            for name, pcoll in outputs.items():
                capture(pcoll, name)
