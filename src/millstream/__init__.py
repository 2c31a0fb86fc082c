"""millstream: Apache Beam's event-time model on one asyncio loop.

`import millstream as beam` runs pipelines written for `apache_beam` that use the supported transforms.
"""

from millstream import coders, io, metrics, pvalue, runners, typehints, utils
from millstream.engine.model.combinefn import CombineFn
from millstream.engine.model.core import (
    CombineGlobally,
    CombinePerKey,
    CombineValues,
    Create,
    Filter,
    FlatMap,
    FlatMapTuple,
    Flatten,
    FlattenWith,
    GroupByKey,
    Map,
    MapTuple,
    ParDo,
    Partition,
    PartitionFn,
    WindowInto,
)
from millstream.engine.model.dofn import DoFn
from millstream.engine.model.pipeline import Pipeline
from millstream.engine.model.ptransform import PTransform, ptransform_fn
from millstream.engine.model.pvalue import PCollection
from millstream.engine.model.rows import GroupBy, Row, Select
from millstream.transforms import combiners, core, ptransform, trigger, window
from millstream.transforms.stats import ApproximateQuantiles, ApproximateUnique
from millstream.transforms.util import (
    BatchElements,
    CoGroupByKey,
    Distinct,
    GroupIntoBatches,
    Keys,
    KvSwap,
    LogElements,
    Regex,
    Reify,
    Reshuffle,
    ToString,
    Values,
    WithKeys,
)

__version__ = "0.1.0"

__all__ = [
    "ApproximateQuantiles",
    "ApproximateUnique",
    "BatchElements",
    "CoGroupByKey",
    "CombineFn",
    "CombineGlobally",
    "CombinePerKey",
    "CombineValues",
    "Create",
    "Distinct",
    "DoFn",
    "Filter",
    "FlatMap",
    "FlatMapTuple",
    "Flatten",
    "FlattenWith",
    "GroupBy",
    "GroupByKey",
    "GroupIntoBatches",
    "Keys",
    "KvSwap",
    "LogElements",
    "Map",
    "MapTuple",
    "PCollection",
    "PTransform",
    "ParDo",
    "Partition",
    "PartitionFn",
    "Pipeline",
    "Regex",
    "Reify",
    "Reshuffle",
    "Row",
    "Select",
    "ToString",
    "Values",
    "WindowInto",
    "WithKeys",
    "coders",
    "combiners",
    "core",
    "ptransform",
    "io",
    "metrics",
    "ptransform_fn",
    "pvalue",
    "runners",
    "trigger",
    "typehints",
    "utils",
    "window",
]
