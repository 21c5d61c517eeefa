"""The `faceproof` command line."""
