"""The engine: device and precision, the model choice, weights, tiling and the model runner.

`build_engine` is the one way in (build.py); the rest of the package is what it is made of.
"""
