"""Beam programming guide, CoGroupByKey: join emails and phone numbers by name.

Written against Beam's API only: replacing `millstream` with `apache_beam` gives the same Beam program.
"""

import millstream as beam
from millstream.options.pipeline_options import PipelineOptions
from millstream.testing.util import assert_that, equal_to

EMAILS = [
    ("amy", "amy@example.com"),
    ("carl", "carl@example.com"),
    ("julia", "julia@example.com"),
    ("carl", "carl@email.com"),
]
PHONES = [
    ("amy", "111-222-3333"),
    ("james", "222-333-4444"),
    ("amy", "333-444-5555"),
    ("carl", "444-555-6666"),
]
EXPECTED = [
    "amy; ['amy@example.com']; ['111-222-3333', '333-444-5555']",
    "carl; ['carl@email.com', 'carl@example.com']; ['444-555-6666']",
    "james; []; ['222-333-4444']",
    "julia; ['julia@example.com']; []",
]


def join_info(name_info):
    (name, info) = name_info
    return f"{name}; {sorted(info['emails'])}; {sorted(info['phones'])}"


def run(argv=None, capture=None):
    with beam.Pipeline(options=PipelineOptions(argv)) as p:
        emails = p | "CreateEmails" >> beam.Create(EMAILS)
        phones = p | "CreatePhones" >> beam.Create(PHONES)
        results = {"emails": emails, "phones": phones} | beam.CoGroupByKey()
        contact_lines = results | beam.Map(join_info)
        assert_that(contact_lines, equal_to(EXPECTED))
        # The tuple form: (name, (emails, phones)).
        counts = (
            (emails, phones)
            | "JoinTuple" >> beam.CoGroupByKey()
            | beam.MapTuple(lambda name, grouped: (name, len(list(grouped[0])), len(list(grouped[1]))))
        )
        if capture is not None:
            capture(results, "joined")
            capture(contact_lines, "contact_lines")
            capture(counts, "counts")
