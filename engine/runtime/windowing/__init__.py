"""Windowed aggregation: the GroupByKey/Combine operator, Beam's reduce-fn runner, the trigger state machine,
fast paths."""
