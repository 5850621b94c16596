"""Input and output: sources that yield frames, sinks that write them, colour handling."""
