"""`PTransform`: the unit of composition, with Beam's `|` and `"Label" >> transform` syntax."""

from __future__ import annotations

from typing import Any

from millstream.engine.model.pvalue import DoOutputsTuple, PBegin, PCollection, PValue


class PTransform:
    """A step of a pipeline: composite transforms implement `expand`, primitives are run by the runtime."""

    #: True for transforms the runtime executes itself (everything else is expanded).
    primitive = False

    def __init__(self, label: str | None = None) -> None:
        self.label = label if label is not None else self.default_label()

    def __getattr__(self, name: str) -> Any:
        # a subclass whose __init__ does not call ours (Beam allows it) still has a label
        if name == "label":
            return self.default_label()
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def default_label(self) -> str:
        """The label used when the user gives none."""
        return type(self).__name__

    def expand(self, input_or_inputs: Any) -> Any:
        """Build this transform out of other transforms; returns the output PValue(s)."""
        raise NotImplementedError(f"{type(self).__name__} must implement expand()")

    def with_input_types(self, *args: Any, **kwargs: Any) -> PTransform:
        """Declare the input element type (the first hint), checked when the transform is applied."""
        self._declare_types("input", args, kwargs)
        return self

    def with_output_types(self, *args: Any, **kwargs: Any) -> PTransform:
        """Declare the output element type: the output PCollection's type, checked against its consumers."""
        self._declare_types("output", args, kwargs)
        return self

    def _declare_types(self, kind: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        # on the instance: the class's decorator hints stay as they are for other instances
        hints = dict(getattr(self, "_millstream_type_hints", {}))
        hints[kind] = (args, kwargs)
        self.__dict__["_millstream_type_hints"] = hints

    def with_resource_hints(self, **kwargs: Any) -> PTransform:
        """Accepted for Beam compatibility; resource hints have no meaning on one machine."""
        return self

    def __rrshift__(self, label: Any) -> PTransform:
        if not isinstance(label, str):
            return NotImplemented
        return _NamedPTransform(self, label)

    def __ror__(self, left: Any) -> Any:
        pipeline = _find_pipeline(left)
        own_pipeline = getattr(self, "pipeline", None)
        if pipeline is None and isinstance(left, (tuple, list)) and not left and own_pipeline is not None:
            return own_pipeline.apply(self, ())  # `() | Flatten(pipeline=p)`
        if pipeline is None and isinstance(left, (list, tuple, set, range)) or _is_plain_iterable(left):
            return _apply_eagerly(self, left)
        if pipeline is None:
            raise TypeError(
                f"cannot apply {self.label!r} to {type(left).__name__} {left!r}: "
                "the left side of | must be a Pipeline, a PCollection, or a tuple/dict of PCollections"
            )
        if left is pipeline:
            left = PBegin(pipeline)
        return pipeline.apply(self, left)

    def __or__(self, right: Any) -> Any:
        if isinstance(right, PTransform):
            return _ChainedPTransform(self, right)
        return NotImplemented

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.label!r}>"


class _NamedPTransform(PTransform):
    """A transform given an explicit label with `"Label" >> transform`."""

    def __init__(self, transform: PTransform, label: str) -> None:
        super().__init__(label)
        self.transform = transform

    def __ror__(self, left: Any) -> Any:
        pipeline = _find_pipeline(left)
        if pipeline is None:
            return super().__ror__(left)
        if left is pipeline:
            left = PBegin(pipeline)
        return pipeline.apply(self.transform, left, self.label)

    def expand(self, input_or_inputs: Any) -> Any:
        raise AssertionError("a named transform is applied through its inner transform")


class _ChainedPTransform(PTransform):
    """`t1 | t2` without an input: a composite applying both in order."""

    def __init__(self, *parts: PTransform) -> None:
        flat: list[PTransform] = []
        for p in parts:
            flat.extend(p.parts if isinstance(p, _ChainedPTransform) else [p])
        self.parts: list[PTransform] = flat
        super().__init__("|".join(p.label for p in flat))

    def expand(self, pvalue: Any) -> Any:
        for part in self.parts:
            pvalue = pvalue | part
        return pvalue


def _is_plain_iterable(value: Any) -> bool:
    from millstream.engine.model.pipeline import Pipeline

    if isinstance(value, (str, bytes, dict, PValue, Pipeline)):
        return False
    return _find_pipeline(value) is None and hasattr(value, "__iter__")


def _apply_eagerly(transform: PTransform, values: Any) -> Any:
    """`[1, 2, 3] | beam.Map(f)`: run the transform at once on the values, as Beam does."""
    from millstream.engine.model.core import Create
    from millstream.engine.model.pipeline import Pipeline

    with Pipeline() as p:
        result = p | "Values" >> Create(list(values)) | "Apply" >> transform
        if isinstance(result, DoOutputsTuple):  # `.with_outputs(...)`: every output, by tag
            main, tagged = (
                _collect_into(result[None], "Main"),
                {tag: _collect_into(result[tag], f"Tag[{tag}]") for tag in result._tagged},
            )
        else:
            out = _collect_into(result, "")
    if isinstance(result, DoOutputsTuple):
        return _MaterializedOutputs(main, tagged, result._main_tag)  # type: ignore[return-value]
    return out


def _collect_into(pcoll: Any, label: str) -> list[Any]:
    """A list that receives `pcoll`'s elements when the eager pipeline runs."""
    from millstream.engine.model.core import Map

    out: list[Any] = []
    pcoll | f"Collect{label}" >> Map(out.append)
    return out


class _MaterializedOutputs:
    """The outputs of a multi-output ParDo applied eagerly to values: lists by tag (Beam's eager
    DoOutputsTuple): ``result.tag``, ``result["tag"]``, and iteration as main output, then the tags."""

    def __init__(self, main: list[Any], tagged: dict[str, list[Any]], main_tag: str | None) -> None:
        self._main = main
        self._tagged = tagged
        self._main_tag = main_tag

    def __getitem__(self, tag: str | None) -> list[Any]:
        if tag is None or tag == self._main_tag:
            return self._main
        if tag not in self._tagged:
            raise KeyError(f"no output tagged {tag!r}; declared tags: {sorted(self._tagged)}")
        return self._tagged[tag]

    def __getattr__(self, tag: str) -> list[Any]:
        if tag.startswith("_"):
            raise AttributeError(tag)
        return self[tag]

    def __iter__(self) -> Any:
        yield self._main
        yield from self._tagged.values()


def _find_pipeline(value: Any) -> Any:
    from millstream.engine.model.pipeline import Pipeline

    if isinstance(value, Pipeline):
        return value
    if isinstance(value, PValue):
        return value.pipeline
    if isinstance(value, (tuple, list)):
        for v in value:
            if isinstance(v, PValue):
                return v.pipeline
    if isinstance(value, dict):
        for v in value.values():
            if isinstance(v, PValue):
                return v.pipeline
    return None


def ptransform_fn(fn: Any) -> Any:
    """Decorator turning `fn(pcoll, *args)` into a PTransform factory, as Beam's `ptransform_fn`."""

    class _FnTransform(PTransform):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(fn.__name__)
            self._args = args
            self._kwargs = kwargs

        def expand(self, pcoll: Any) -> Any:
            return fn(pcoll, *self._args, **self._kwargs)

    _FnTransform.__name__ = fn.__name__
    _FnTransform.__doc__ = fn.__doc__
    return _FnTransform


__all__ = ["PTransform", "ptransform_fn", "PCollection"]
