"""Beam's `apache_beam.transforms.core`: DoFn, ParDo, Map, GroupByKey, Combine, WindowInto, ..."""

from millstream.engine.model.combinefn import CallableWrapperCombineFn, CombineFn
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
from millstream.engine.model.ptransform import PTransform
from millstream.engine.model.rows import GroupBy, Select
from millstream.engine.model.splittable import RestrictionProvider
from millstream.engine.model.watermark_estimators import WatermarkEstimatorProvider
from millstream.engine.model.windowing import Windowing

__all__ = [
    "GroupBy",
    "Select",
    "CallableWrapperCombineFn",
    "CombineFn",
    "CombineGlobally",
    "CombinePerKey",
    "CombineValues",
    "Create",
    "DoFn",
    "Filter",
    "FlatMap",
    "FlatMapTuple",
    "Flatten",
    "FlattenWith",
    "GroupByKey",
    "Map",
    "MapTuple",
    "ParDo",
    "Partition",
    "PartitionFn",
    "PTransform",
    "RestrictionProvider",
    "WatermarkEstimatorProvider",
    "WindowInto",
    "Windowing",
]
