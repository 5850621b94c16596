"""The ground floor: errors, the frame type, stage timing, metrics, files and FFmpeg's error
text. It imports nothing of streamdeblur's from above it, so every layer may use it."""
