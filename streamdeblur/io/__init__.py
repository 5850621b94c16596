"""Input and output: `sources/` yield frames, `sinks/` write them; colour, containers,
orientation and damage are what both sides share."""
