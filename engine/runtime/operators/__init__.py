"""Operators: ParDo (sync, async, stateful with user state), sources and sinks, Flatten/WindowInto, the
TestStream player."""
