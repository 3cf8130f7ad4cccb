"""I/O plumbing under everything else: stop signals and exit codes, the line writer, plurals."""
