"""Custom pipeline options as Beam's examples declare them: `_add_argparse_args`, value-provider arguments,
`view_as`, and options read inside a DoFn at run time.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions, SetupOptions, StandardOptions


class CompatWordOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        parser.add_argument("--compat_min_length", type=int, default=1, help="shortest word kept")
        parser.add_argument("--compat_label", default="words", help="a plain string option")
        parser.add_value_provider_argument(
            "--compat_prefix", type=str, default="w:", help="template parameter"
        )
        parser.add_value_provider_argument(
            "--compat_repeat", type=int, default=1, help="typed template parameter"
        )


class AddPrefix(beam.DoFn):
    """Reads its template parameters at run time, as Beam's template guide shows."""

    def __init__(self, prefix, repeat):
        self.prefix = prefix
        self.repeat = repeat

    def process(self, element):
        yield self.prefix.get() * self.repeat.get() + element


def run(lines, argv=None, capture=None):
    pipeline_options = PipelineOptions(argv)
    pipeline_options.view_as(SetupOptions).save_main_session = True
    options = pipeline_options.view_as(CompatWordOptions)
    settings = {
        "min_length": options.compat_min_length,
        "label": options.compat_label,
        "streaming": pipeline_options.view_as(StandardOptions).streaming,
        "save_main_session": pipeline_options.view_as(SetupOptions).save_main_session,
    }
    with beam.Pipeline(options=pipeline_options) as p:
        words = (
            p
            | beam.Create(lines)
            | beam.FlatMap(str.split)
            | beam.Filter(lambda w, n: len(w) >= n, options.compat_min_length)
            | beam.ParDo(AddPrefix(options.compat_prefix, options.compat_repeat))
        )
        if capture is not None:
            capture(words, options.compat_label)
    return settings
