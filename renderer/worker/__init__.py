"""The torch side: everything that runs the networks, in the worker process (or behind `serve`).
Nothing here imports imgui, glfw or OpenGL; the GUI reaches this package only through the
contract in renderer/ (protocol, client)."""
