"""Write checkpoints/demo.safetensors as an UNTRAINED StyleGAN3-T (64 px) initialised with a fixed
seed: the default model until a trained demo model ships. Its metadata marks it untrained, and the
visualizer says so in the model info line.

    python checkpoints/make_untrained.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from renderer.models import save_generator  # noqa: E402
from renderer.networks import build_generator  # noqa: E402

CONFIG = dict(z_dim=64, w_dim=64, c_dim=0, img_resolution=64, img_channels=3,
              channel_base=4096, channel_max=128, mapping_kwargs=dict(num_layers=2))


def main() -> None:
    torch.manual_seed(20261125)
    G = build_generator("stylegan3", CONFIG).eval()
    out = save_generator(G, ROOT / "checkpoints" / "demo.safetensors",
                         metadata={"untrained": "true", "description": "untrained StyleGAN3-T, fixed seed 20261125"})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
