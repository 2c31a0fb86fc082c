"""Sources and sinks, written only against the engine's Source/Sink protocols."""
