"""Beam's wordcount.py: argparse for --input/--output, the rest to PipelineOptions, ReadFromText, WriteToText.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import argparse
import re

import millstream as beam
from millstream.io import ReadFromText, WriteToText
from millstream.options.pipeline_options import PipelineOptions, SetupOptions


class WordExtractingDoFn(beam.DoFn):
    """Parse each line of input text into words."""

    def process(self, element):
        return re.findall(r"[\w\']+", element, re.UNICODE)


def run(argv=None, save_main_session=True):
    """Main entry point; defines and runs the wordcount pipeline."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", dest="input", required=True, help="Input file to process.")
    parser.add_argument("--output", dest="output", required=True, help="Output file to write results to.")
    known_args, pipeline_args = parser.parse_known_args(argv)

    pipeline_options = PipelineOptions(pipeline_args)
    pipeline_options.view_as(SetupOptions).save_main_session = save_main_session

    with beam.Pipeline(options=pipeline_options) as p:
        lines = p | "Read" >> ReadFromText(known_args.input)
        counts = (
            lines
            | "Split" >> (beam.ParDo(WordExtractingDoFn()).with_output_types(str))
            | "PairWithOne" >> beam.Map(lambda x: (x, 1))
            | "GroupAndSum" >> beam.CombinePerKey(sum)
        )

        def format_result(word, count):
            return f"{word}: {count}"

        output = counts | "Format" >> beam.MapTuple(format_result)
        output | "Write" >> WriteToText(known_args.output)
