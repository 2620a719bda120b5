"""Custom ops of the generators: reference implementations and faster paths, chosen in paths.py."""
