"""Beam programming guide, CombineFn: the AverageFn, globally, per key and over grouped values.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions
from millstream.testing.util import assert_that, equal_to


class AverageFn(beam.CombineFn):
    def create_accumulator(self):
        return (0.0, 0)

    def add_input(self, sum_count, input):
        (sum, count) = sum_count
        return sum + input, count + 1

    def merge_accumulators(self, accumulators):
        sums, counts = zip(*accumulators)
        return sum(sums), sum(counts)

    def extract_output(self, sum_count):
        (sum, count) = sum_count
        return sum / count if count else float("NaN")


PLAYER_ACCURACY = [("cat", 1), ("cat", 5), ("cat", 9), ("dog", 5), ("dog", 2), ("cat", 1), ("dog", 8)]


def run(argv=None, capture=None):
    with beam.Pipeline(options=PipelineOptions(argv)) as p:
        pc = p | "Numbers" >> beam.Create([1, 10, 100, 1000])
        average = pc | "Average" >> beam.CombineGlobally(AverageFn())
        assert_that(average, equal_to([277.75]), label="CheckAverage")

        player_accuracies = p | "Players" >> beam.Create(PLAYER_ACCURACY)
        avg_accuracy_per_player = player_accuracies | "PerKey" >> beam.CombinePerKey(AverageFn())
        assert_that(avg_accuracy_per_player, equal_to([("cat", 4.0), ("dog", 5.0)]), label="CheckPerKey")

        grouped = player_accuracies | beam.GroupByKey() | "Values" >> beam.CombineValues(AverageFn())
        sums = player_accuracies | "Sum" >> beam.CombinePerKey(sum)
        empty = p | "Empty" >> beam.Create([])
        empty_average = empty | "EmptyAverage" >> beam.CombineGlobally(AverageFn())
        empty_sum = empty | "EmptySum" >> beam.CombineGlobally(sum).without_defaults()
        if capture is not None:
            capture(average, "average")
            capture(avg_accuracy_per_player, "per_key")
            capture(grouped, "combine_values")
            capture(sums, "sums")
            capture(empty_average, "empty_average")
            capture(empty_sum, "empty_sum")
