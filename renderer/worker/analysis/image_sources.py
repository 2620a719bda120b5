"""Where images for the average spectrum come from: a generator (N seeds), or a folder or zip of
real images. Every source yields float32 batches [B, C, H, W] in the uint8 value range [0, 255],
the domain the official spectrum tool whitens."""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch
from PIL import Image
from torch import nn

from renderer.worker.latents import seed_inputs

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


@dataclass(frozen=True)
class ImageFolderSource:
    """Images in a folder (searched recursively) or a zip file, in sorted name order. Images of
    another size are resized to `resolution` (Lanczos); channels follow `channels` (3 RGB, 1 grey)."""

    path: str
    resolution: int
    channels: int = 3
    max_images: int | None = None

    def names(self) -> list[str]:
        if zipfile.is_zipfile(self.path):
            with zipfile.ZipFile(self.path) as z:
                names = [n for n in z.namelist() if n.lower().endswith(IMAGE_EXTENSIONS)]
        elif os.path.isdir(self.path):
            names = [os.path.relpath(os.path.join(root, f), self.path)
                     for root, _dirs, files in os.walk(self.path) for f in files
                     if f.lower().endswith(IMAGE_EXTENSIONS)]
        else:
            raise FileNotFoundError(f"{self.path}: not a folder or a zip file of images")
        names = sorted(names)
        return names[: self.max_images] if self.max_images is not None else names

    def __len__(self) -> int:
        return len(self.names())

    def _open(self, name: str, archive: zipfile.ZipFile | None) -> Image.Image:
        if archive is not None:
            return Image.open(io.BytesIO(archive.read(name)))
        return Image.open(os.path.join(self.path, name))

    def native_resolution(self) -> int:
        """Width of the first image (the resolution to use when no model sets one)."""
        names = self.names()
        if not names:
            raise FileNotFoundError(f"{self.path}: no images ({', '.join(IMAGE_EXTENSIONS)})")
        archive = zipfile.ZipFile(self.path) if zipfile.is_zipfile(self.path) else None
        try:
            with self._open(names[0], archive) as im:
                return im.width
        finally:
            if archive is not None:
                archive.close()

    def _to_array(self, image: Image.Image) -> np.ndarray:
        image = image.convert("RGB" if self.channels == 3 else "L")
        if image.size != (self.resolution, self.resolution):
            image = image.resize((self.resolution, self.resolution), Image.LANCZOS)
        a = np.asarray(image, dtype=np.float32)
        return a[None] if a.ndim == 2 else a.transpose(2, 0, 1)

    def batches(self, batch_size: int = 16) -> Iterator[np.ndarray]:
        names = self.names()
        if not names:
            raise FileNotFoundError(f"{self.path}: no images ({', '.join(IMAGE_EXTENSIONS)})")
        archive = zipfile.ZipFile(self.path) if zipfile.is_zipfile(self.path) else None
        try:
            for start in range(0, len(names), batch_size):
                arrays = []
                for name in names[start:start + batch_size]:
                    with self._open(name, archive) as im:
                        arrays.append(self._to_array(im))
                yield np.stack(arrays)
        finally:
            if archive is not None:
                archive.close()


@dataclass(frozen=True)
class GeneratorSource:
    """Images of a generator for seeds first_seed .. first_seed + num_images - 1 (official z and class
    conventions), mapped to [0, 255] as the official tools save them: clamp(x * 127.5 + 128)."""

    G: nn.Module
    num_images: int
    first_seed: int = 0
    truncation_psi: float = 1.0
    device: str = "cpu"

    def __len__(self) -> int:
        return self.num_images

    def batches(self, batch_size: int = 16) -> Iterator[np.ndarray]:
        G = self.G
        for start in range(0, self.num_images, batch_size):
            seeds = range(self.first_seed + start, self.first_seed + min(start + batch_size, self.num_images))
            z, c = seed_inputs(G, seeds, self.device)
            with torch.no_grad():
                img = G(z, c, truncation_psi=self.truncation_psi, noise_mode="const")
            yield (img * 127.5 + 128).clamp(0, 255).cpu().numpy()
