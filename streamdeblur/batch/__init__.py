"""`streamdeblur batch IN_DIR -o OUT_DIR`: every video and image under a folder, tree mirrored.

plan (walk, classify, name, resume) → local executor (shared model per device, `--jobs`
files in flight) or Ray tasks (`--ray`) → report and summary. See `run.run_batch`.
"""
