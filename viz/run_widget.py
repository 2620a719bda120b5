"""A run over time and A/B: every snapshot of a training run directory rendered with the latent on
screen, a slider over them with their kimg and logged quality numbers; and two models side by side
with their difference image."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.gl_utils import Texture
from gui_utils.imgui_utils import button, grayed_out
from renderer.protocol import Comparison, CompareRequest, RenderArgs, RunSnapshot, RunTimelineRequest
from viz.state import RunState

IMAGE_SIZE = 150              # px at scale 1: a snapshot, and each of A, B and their difference
LOAD_LABEL = "Load run"
COMPARE_LABEL = "Compare A/B"


@dataclass
class RunDrawn:
    """What the section shows (for scripted tests and the state dump)."""
    snapshots: int = 0
    kimg: list[float | None] = field(default_factory=list)
    shown: int | None = None
    shown_metrics: dict[str, float] = field(default_factory=dict)
    compared: bool = False
    max_difference: float | None = None
    error: str | None = None


class RunWidget:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.restore(RunState())
        self.run_job = None
        self.compare_job = None
        self.snapshots: list[RunSnapshot] = []
        self.index = 0
        self.comparison: Comparison | None = None
        self._snapshot_texture = Texture()
        self._ab_textures = (Texture(), Texture(), Texture())
        self._uploaded: tuple[object, object] = (None, None)
        self.drawn = RunDrawn()

    def state(self) -> RunState:
        return RunState(run_dir=self.run_dir, model_b=self.model_b)

    def restore(self, state: RunState) -> None:
        self.run_dir, self.model_b = state.run_dir, state.model_b

    def reset(self) -> None:
        self.restore(RunState())

    @property
    def busy(self) -> bool:
        return self.run_job is not None or self.compare_job is not None

    def load_run(self, args: RenderArgs) -> None:
        path = self.run_dir.strip() or args.model
        if self.run_job is not None or not path:
            return
        self.snapshots, self.index = [], 0
        self.run_job = self.viz.client.submit(RunTimelineRequest(args, str(Path(path).expanduser())))

    def compare(self, args: RenderArgs) -> None:
        if self.compare_job is None and self.model_b.strip():
            self.compare_job = self.viz.client.submit(CompareRequest(args, str(Path(self.model_b.strip()).expanduser())))

    def cancel(self) -> None:
        for job in (self.run_job, self.compare_job):
            if job is not None:
                job.cancel()

    def _poll(self) -> None:
        if self.run_job is not None:
            self.snapshots += [o for o in self.run_job.take_outputs() if isinstance(o, RunSnapshot)]
            if self.run_job.done:
                if self.run_job.error:
                    self.drawn.error = self.run_job.error
                    self.viz.note(f"Run over time: {self.run_job.error}")
                self.run_job = None
        if self.compare_job is not None and self.compare_job.done:
            job, self.compare_job = self.compare_job, None
            if job.error:
                self.drawn.error = job.error
                self.viz.note(f"A/B: {job.error}")
            elif isinstance(job.value, Comparison):
                self.comparison = job.value
        st = self.drawn
        st.snapshots, st.kimg = len(self.snapshots), [s.kimg for s in self.snapshots]
        st.compared = self.comparison is not None
        st.max_difference = self.comparison.max_difference if self.comparison is not None else None
        if self.snapshots:
            self.index = min(self.index, len(self.snapshots) - 1)
            st.shown, st.shown_metrics = self.index, dict(self.snapshots[self.index].metrics)

    # Drawing ------------------------------------------------------------------------------

    def __call__(self, show: bool) -> None:
        self._poll()
        if show:
            self._draw()

    def _draw(self) -> None:
        viz, lay = self.viz, self.viz.layout
        loaded = bool(viz.model_info.family)
        with grayed_out(not loaded or self.run_job is not None):
            _, self.run_dir = imgui.input_text_with_hint("##run dir", "training run directory (default: the model)",
                                                         self.run_dir)
            imgui_utils.items.record("##run dir")
            imgui.same_line()
            if button(LOAD_LABEL, lay.button_width, enabled=loaded and self.run_job is None):
                viz.defer(self.load_run)
        if self.run_job is not None:
            imgui.progress_bar(self.run_job.progress, imgui.ImVec2(-1, 0), f"{len(self.snapshots)} snapshots")
        self._draw_snapshot()
        imgui.separator()
        with grayed_out(not loaded or self.compare_job is not None):
            _, self.model_b = imgui.input_text_with_hint("##model b", "model B (file or run directory)", self.model_b)
            imgui_utils.items.record("##model b")
            imgui.same_line()
            if button(COMPARE_LABEL, lay.button_width, enabled=loaded and bool(self.model_b.strip())):
                viz.defer(self.compare)
        self._draw_comparison()
        if self.drawn.error:
            imgui.text_wrapped(self.drawn.error)

    def _draw_snapshot(self) -> None:
        if not self.snapshots:
            return
        changed, index = imgui.slider_int("Snapshot##run", self.index, 0, len(self.snapshots) - 1)
        imgui_utils.items.record("Snapshot##run")
        if changed:
            self.index = index
        snapshot = self.snapshots[self.index]
        kimg = f"kimg {snapshot.kimg:g}" if snapshot.kimg is not None else "kimg ?"
        imgui.text(f"{Path(snapshot.file).name}: {kimg}")
        if snapshot.metrics:
            imgui.text("   ".join(f"{name} {value:.4g}" for name, value in snapshot.metrics))
        if snapshot.image is None:
            imgui.text_wrapped(snapshot.error or "not rendered")
            return
        if self._uploaded[0] is not snapshot:
            self._snapshot_texture.upload(snapshot.image)
            self._uploaded = (snapshot, self._uploaded[1])
        size = self.viz.layout.px(IMAGE_SIZE)
        imgui.image(imgui.ImTextureRef(self._snapshot_texture.id), imgui.ImVec2(size, size))
        imgui_utils.items.record("##snapshot image")

    def _draw_comparison(self) -> None:
        c = self.comparison
        if c is None:
            return
        if self._uploaded[1] is not c:
            for texture, image in zip(self._ab_textures, (c.image_a, c.image_b, c.difference)):
                texture.upload(image)
            self._uploaded = (self._uploaded[0], c)
        size = self.viz.layout.px(IMAGE_SIZE)
        for i, texture in enumerate(self._ab_textures):
            if i:
                imgui.same_line()
            imgui.image(imgui.ImTextureRef(texture.id), imgui.ImVec2(size, size))
        imgui_utils.items.record("##ab images")
        imgui.text_wrapped(f"A: {Path(c.model_a).name}   B: {Path(c.model_b).name}   |A - B|: bright = {c.max_difference:.0f} "
                   f"levels, mean {c.mean_difference:.2f}")

    def close(self) -> None:
        self.cancel()
        self._snapshot_texture.delete()
        for texture in self._ab_textures:
            texture.delete()
