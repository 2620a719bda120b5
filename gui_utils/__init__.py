"""Generic window, OpenGL texture, ImGui and font helpers. Knows nothing about GANs (or torch)."""
