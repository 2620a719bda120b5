"""The GUI's settings without a window: undo history steps, session files read strictly, and a saved
frame's settings worked out from its render state alone (a PNG written by `render`)."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from renderer.capture import save_png
from renderer.conventions import as_matrix3, user_transform, weighted_seeds
from renderer.protocol import RenderArgs
from viz.frame_state import GUI_STATE_KEY, FrameStateError, frame_settings, settings_document, settings_from_args
from viz.history import MAX_STEPS, History
from viz.session import (SESSION_KIND, NewerSessionError, SessionError, SessionFiles, load_session,
                         save_session, session_from_document)
from viz.state import (EquivarianceState, InspectState, LatentState, ProjectionState, RunState, SeedGridState, Session,
                       Settings, TruncNoiseState)


def _psi(value: float) -> Settings:
    return Settings(trunc_noise=TruncNoiseState(psi=value))


# Undo and redo ----------------------------------------------------------------------------------

def test_an_edit_in_progress_becomes_one_step_when_it_ends():
    history = History(_psi(1.0))
    for psi in (0.9, 0.8, 0.7):                      # a slider held over three frames
        history.observe(_psi(psi), editing=True)
    assert not history.can_undo
    history.observe(_psi(0.7), editing=False)
    assert history.undo(_psi(0.7)) == _psi(1.0)
    assert not history.can_undo and history.redo(_psi(1.0)) == _psi(0.7)


def test_a_new_step_after_undo_drops_the_redo_list():
    history = History(_psi(1.0))
    history.observe(_psi(0.5), editing=False)
    history.undo(_psi(0.5))
    history.observe(_psi(0.2), editing=False)
    assert history.can_undo and not history.can_redo


def test_what_an_animation_moves_is_not_a_step():
    moving = Settings(latent=LatentState(anim=True))
    history = History(moving)
    for x in (0.1, 0.2, 0.3):
        history.observe(Settings(latent=LatentState(anim=True, x=x)), editing=False)
    assert not history.can_undo


def test_an_automatic_follow_up_is_part_of_the_users_step():
    history = History(_psi(1.0))
    history.observe(_psi(0.5), editing=False)
    history.amend(replace(_psi(0.5), latent=LatentState(x=3.0)))      # e.g. a layer carried over
    assert history.undo(history.committed) == _psi(1.0)
    assert not history.can_undo


def test_the_history_keeps_a_bounded_number_of_steps():
    history = History(_psi(0.0))
    for i in range(1, MAX_STEPS + 20):
        history.observe(_psi(i / 1000), editing=False)
    steps = 0
    while history.undo(history.committed) is not None:
        steps += 1
    assert steps == MAX_STEPS


# Session files ----------------------------------------------------------------------------------

def test_a_session_file_reads_back_the_same(tmp_path):
    session = Session(settings=replace(Settings(), latent=LatentState(x=100.76, y=2.0),
                                       equivariance=EquivarianceState(translate=(0.11, -0.04), rotate=0.03)))
    path = save_session(tmp_path / "s.json", session)
    assert load_session(path) == session
    assert json.loads(path.read_text())["kind"] == SESSION_KIND


@pytest.mark.parametrize("settings, where", [
    ({"latent": {"x": "far"}}, "settings.latent.x"),
    ({"latent": {"anim": 1}}, "settings.latent.anim"),
    ({"trunc_noise": {"cutoff": 2.5}}, "settings.trunc_noise.cutoff"),
    ({"equivariance": {"translate": [0.1]}}, "settings.equivariance.translate"),
    ({"layer": []}, "settings.layer"),
])
def test_a_damaged_field_is_named(settings, where):
    document = {"kind": SESSION_KIND, "session_version": 1, "settings": settings}
    with pytest.raises(SessionError, match=where.replace(".", r"\.")):
        session_from_document(document, "s.json")


def test_unknown_fields_are_ignored_and_missing_ones_keep_their_defaults():
    document = {"kind": SESSION_KIND, "session_version": 1, "settings": {"latent": {"x": 4, "future": True}}}
    session = session_from_document(document, "s.json")
    assert session.settings.latent == LatentState(x=4.0)


def test_a_newer_session_is_refused():
    with pytest.raises(NewerSessionError, match="newer version"):
        session_from_document({"kind": SESSION_KIND, "session_version": 99}, "s.json")


def test_a_damaged_default_session_is_moved_aside(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_VIZ_CONFIG_DIR", str(tmp_path))
    (tmp_path / "session.json").write_text("{ not json")
    files = SessionFiles(autosave=True)
    session, note = files.restore_default()
    assert session is None and "could not be restored" in note
    assert (tmp_path / "session.json.damaged").read_text() == "{ not json"
    assert not (tmp_path / "session.json").exists()


# A frame saved by `render` (no GUI settings in it) ---------------------------------------------

def test_a_render_frame_gives_the_settings_that_build_its_args(tmp_path):
    args = RenderArgs(model="m.safetensors", latent=weighted_seeds(100.24, 0.0), trunc_psi=0.7, mix_seed=7,
                      mix_rows=(2, 3), input_transform=as_matrix3(user_transform((0.11, -0.04), 0.03)))
    path = save_png(tmp_path / "f.png", np.zeros((4, 4, 3), np.uint8), args, None)
    settings, read, exact = frame_settings(path, Settings())
    assert read == args and not exact
    assert weighted_seeds(settings.latent.x, settings.latent.y) == args.latent
    assert settings.stylemix.rows == (2, 3) and settings.stylemix.seed == 7
    assert settings.trunc_noise.psi == 0.7
    eq = settings.equivariance
    assert np.allclose(as_matrix3(user_transform(eq.translate, eq.rotate)), args.input_transform)


def test_settings_from_args_keep_what_a_frame_does_not_hold():
    base = replace(Settings(), latent=LatentState(speed=3.0))
    assert settings_from_args(RenderArgs(model="m"), base).latent.speed == 3.0


def test_a_png_without_a_render_state_is_refused_with_its_name(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "plain.png")
    with pytest.raises(FrameStateError, match="plain.png"):
        frame_settings(tmp_path / "plain.png", Settings())


def test_the_exploration_sections_are_in_the_session_but_not_in_saved_frames(tmp_path):
    explore = dict(projection=ProjectionState(image_path="/home/me/photo.png", space="w+", steps=77),
                   seed_grid=SeedGridState(columns=6, rows=2, mode="direction", direction_index=3, step=0.5),
                   run=RunState(run_dir="runs/00002", model_b="b.pkl"), inspect=InspectState(magnification=20))
    settings = replace(Settings(), latent=LatentState(x=3.0), **explore)
    assert load_session(save_session(tmp_path / "s.json", Session(settings=settings))).settings == settings
    path = save_png(tmp_path / "f.png", np.zeros((4, 4, 3), np.uint8), RenderArgs(model="m.safetensors"), None,
                    {GUI_STATE_KEY: settings_document(settings)})
    assert "photo.png" not in path.with_suffix(".json").read_text()
    current = replace(Settings(), projection=ProjectionState(image_path="other.png"), inspect=InspectState(4))
    opened, _, exact = frame_settings(path, current)
    assert exact and opened.latent.x == 3.0                       # the frame's own settings ...
    assert (opened.projection, opened.seed_grid, opened.run, opened.inspect) == \
        (current.projection, current.seed_grid, current.run, current.inspect)   # ... the rest stays as it is
