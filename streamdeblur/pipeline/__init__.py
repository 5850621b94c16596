"""The threaded frame pipeline: decode → gate → denoise → model → encode."""
