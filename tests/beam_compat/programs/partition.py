"""Beam programming guide, Partition: students by percentile decile, plants by duration, and a PartitionFn.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions
from millstream.testing.util import assert_that, equal_to

STUDENTS = [("ann", 3), ("bob", 47), ("cid", 45), ("dee", 99), ("eve", 40), ("fay", 71), ("gus", 0)]
PLANTS = [
    {"icon": "🍓", "name": "Strawberry", "duration": "perennial"},
    {"icon": "🥕", "name": "Carrot", "duration": "biennial"},
    {"icon": "🍆", "name": "Eggplant", "duration": "perennial"},
    {"icon": "🍅", "name": "Tomato", "duration": "annual"},
    {"icon": "🥔", "name": "Potato", "duration": "perennial"},
]
DURATIONS = ["annual", "biennial", "perennial"]


def partition_fn(student, num_partitions):
    return int(student[1] * num_partitions / 100)


def by_duration(plant, num_partitions):
    return DURATIONS.index(plant["duration"])


class SplitByLength(beam.PartitionFn):
    def partition_for(self, element, num_partitions, cutoff):
        return 0 if len(element) < cutoff else num_partitions - 1


def run(argv=None, capture=None):
    with beam.Pipeline(options=PipelineOptions(argv)) as p:
        students = p | "Students" >> beam.Create(STUDENTS)
        by_decile = students | beam.Partition(partition_fn, 10)
        fortieth_percentile = by_decile[4]
        assert_that(fortieth_percentile, equal_to([("bob", 47), ("cid", 45), ("eve", 40)]), label="Check40")

        annuals, biennials, perennials = (
            p
            | "Gardening plants" >> beam.Create(PLANTS)
            | "Partition" >> beam.Partition(by_duration, len(DURATIONS))
        )
        words = p | "Words" >> beam.Create(["a", "bb", "ccc", "dddd"])
        short, middle, long = words | "ByLength" >> beam.Partition(SplitByLength(), 3, 3)
        everyone = by_decile | "Everyone" >> beam.Flatten()
        if capture is not None:
            for i, part in enumerate(by_decile):
                capture(part, f"decile{i}")
            capture(annuals | "AnnualNames" >> beam.Map(lambda plant: plant["name"]), "annuals")
            capture(biennials | "BiennialNames" >> beam.Map(lambda plant: plant["name"]), "biennials")
            capture(perennials | "PerennialNames" >> beam.Map(lambda plant: plant["name"]), "perennials")
            capture(short, "short")
            capture(middle, "middle")
            capture(long, "long")
            capture(everyone, "everyone")
