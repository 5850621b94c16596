"""streamdeblur: real-time video deblurring for files, image sequences, live streams and folders."""

__version__ = "0.1.0"
