"""The frame path every mode shares: decode → gate → denoise → model → encode, on three threads.

pipeline.py  the threads, the graceful stop, errors
stages.py    the blur gate, scene cuts, and FrameProcessor (gate → denoise → model)
denoise.py   the denoisers before the model, one registry
config.py    RunConfig: the options file, live and batch runs share
queues.py    bounded hand-overs between the threads
stats.py     counts, stage timings and the report built from them
"""
