"""Node factories for primitives defined outside the core (sources, sinks, test streams), registered by type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from millstream.engine.runtime.graph.node import Node

NodeFactory = Callable[[Any, Any, Any], tuple[Node, Any]]
_FACTORIES: dict[type, NodeFactory] = {}


def register_primitive(transform_type: type, factory: NodeFactory) -> None:
    """Make the planner build nodes for `transform_type` with `factory(applied, options, plan)`."""
    _FACTORIES[transform_type] = factory


def make_node(applied: Any, opts: Any, plan: Any) -> tuple[Node, Any]:
    """The node (and source driver, if any) for a registered primitive."""
    for cls in type(applied.transform).__mro__:
        factory = _FACTORIES.get(cls)
        if factory is not None:
            return factory(applied, opts, plan)
    raise NotImplementedError(
        f"step '{applied.full_label}': the runtime has no operator for {type(applied.transform).__name__}"
    )
