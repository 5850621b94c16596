"""streamdeblur: real-time video deblurring for files, image sequences, live streams and folders."""

# OpenCV must load before PyAV: PyAV's wheels bundle their own libxcb, and when they load first
# OpenCV's Qt window plugin binds to it and cv2.imshow hangs at 100% CPU for ever (`live
# --preview`; PyAV issue #978, opencv issue #29195). Every module of the package passes here first.
import cv2  # noqa: F401

__version__ = "0.1.0"
