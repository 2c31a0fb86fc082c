"""Beam's `apache_beam.io`: connectors (local files in every format now; Kafka and Pub/Sub as they land)."""

from millstream.engine.model.io import SinkWriter, Source, SourceBatch, SourceReader
from millstream.io import (
    avroio,
    fileio,
    filesystem,
    iobase,
    parquetio,
    progress,
    range_trackers,
    restriction_trackers,
    textio,
)
from millstream.io.avroio import ReadFromAvro, WriteToAvro
from millstream.io.filesystem import CompressionTypes

# As in Beam, `io.Read`/`io.Write` take Beam's legacy BoundedSource/Sink too, and `io.Sink` is Beam's legacy Sink
# (millstream's own sink protocol is `millstream.engine.model.io.Sink`).
from millstream.io.iobase import Read, Sink, Write, Writer
from millstream.io.parquetio import ReadFromParquet, WriteToParquet
from millstream.io.progress import ProgressOptions
from millstream.io.range_trackers import (
    OffsetRangeTracker,
    OrderedPositionRangeTracker,
    UnsplittableRangeTracker,
)
from millstream.io.textio import (
    ReadAllFromText,
    ReadFromCsv,
    ReadFromJson,
    ReadFromText,
    WriteToCsv,
    WriteToJson,
    WriteToText,
)

__all__ = [
    "CompressionTypes",
    "OffsetRangeTracker",
    "OrderedPositionRangeTracker",
    "UnsplittableRangeTracker",
    "Writer",
    "iobase",
    "range_trackers",
    "restriction_trackers",
    "ProgressOptions",
    "Read",
    "ReadAllFromText",
    "ReadFromAvro",
    "ReadFromCsv",
    "ReadFromJson",
    "ReadFromParquet",
    "ReadFromText",
    "Sink",
    "SinkWriter",
    "Source",
    "SourceBatch",
    "SourceReader",
    "Write",
    "WriteToAvro",
    "WriteToCsv",
    "WriteToJson",
    "WriteToParquet",
    "WriteToText",
    "avroio",
    "fileio",
    "filesystem",
    "parquetio",
    "progress",
    "textio",
]

# Kafka (aiokafka is imported only when a Kafka source or sink starts).
from millstream.io import kafka  # noqa: E402
from millstream.io.kafka import ReadFromKafka, WriteToKafka  # noqa: E402

__all__ += ["ReadFromKafka", "WriteToKafka", "kafka"]

# Google Cloud Pub/Sub (google-cloud-pubsub is imported only when a Pub/Sub source or sink starts).
from millstream.io import pubsub  # noqa: E402
from millstream.io.pubsub import (  # noqa: E402
    PubsubMessage,
    ReadFromPubSub,
    ReadStringsFromPubSub,
    WriteStringsToPubSub,
    WriteToPubSub,
)

__all__ += [
    "PubsubMessage",
    "ReadFromPubSub",
    "ReadStringsFromPubSub",
    "WriteStringsToPubSub",
    "WriteToPubSub",
    "pubsub",
]
