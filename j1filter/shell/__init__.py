"""The I/O shell around the pure core: the line stream (bytes in, documents out) and the command line."""
