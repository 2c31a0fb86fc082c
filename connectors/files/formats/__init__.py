"""File formats beyond lines of text: CSV, Avro, Parquet (each a source reader and a sink format)."""
