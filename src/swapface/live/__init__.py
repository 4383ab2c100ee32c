"""Live swapping: the threaded pipeline, its outputs (MJPEG, recording) and the driver."""
