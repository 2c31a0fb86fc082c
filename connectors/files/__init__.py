"""Files: sources, the exactly-once sink, names and globs, matching, continuous watching, progress, and the formats."""
