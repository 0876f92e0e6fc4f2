"""Everything that moves frames: sources, engine, smoothing, sinks, pipeline and the CLI."""
