"""Scripted sessions through the real frame loop: the non-interactive --save-gui mode, and tests.

A script is a list of steps run one after another, each when the previous one is done; input steps
feed real ImGui mouse and key events (gui_utils.scripted_input). Steps (JSON objects):
    {"wait": "frame"}                       until the frame for the current args is on screen (or failed)
    {"wait": "export"}                      until the clip export has finished
    {"wait": "analysis"}                    until the Analysis section's and the equivariance readout's jobs are done
    {"set": "latent.x", "value": 5}         set a widget attribute (dotted path from the visualizer)
    {"click": LABEL}                        click the item drawn with LABEL (scrolls it into view);
                                            "at": [FX, FY] clicks at those fractions of its size
    {"type": TEXT}                          type TEXT into the focused field
    {"scroll_to": LABEL}                    scroll the control pane until LABEL is wholly visible
    {"key": "right", "mods": ["ctrl"]}      press and release a key
    {"drag_image": [DX, DY]}                drag across the image from its centre
    {"frames": N}                           let N frames pass
    {"dump": PATH}                          write the visualizer's state as JSON (+ PATH.screen.npy, PATH.image.npy)
    {"save_gui": PATH}                      save the window as a PNG
    {"quit": CODE}                          close with this exit status
Every step has a timeout; a step that times out, or an error frame while waiting without
"allow_error", ends the run with a message and a non-zero status.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import psutil

from gui_utils.imgui_utils import items

SCRIPT_ENV = "STYLEGAN_VIZ_SCRIPT"
STEP_TIMEOUT = 120.0


class ScriptError(RuntimeError):
    pass


class ScriptRunner:
    def __init__(self, viz, steps: list[dict], timeout: float = STEP_TIMEOUT) -> None:
        self.viz = viz
        self.steps = list(steps)
        self.timeout = timeout
        self.exit_code: int | None = None
        self._started: float | None = None
        self._frames_left: int | None = None
        self._after_draw: list = []
        self._input_queued = False
        viz.after_draw_hooks.append(self._run_after_draw)

    @classmethod
    def from_env(cls, viz) -> "ScriptRunner | None":
        path = os.environ.get(SCRIPT_ENV)
        if not path:
            return None
        return cls(viz, json.loads(Path(path).read_text()))

    @property
    def finished(self) -> bool:
        return self.exit_code is not None

    def fail(self, message: str) -> None:
        print(f"visualizer: {message}", file=sys.stderr)
        self.exit_code = 1
        self.viz.request_close()

    def before_frame(self) -> None:
        """Advance the script by at most one step (called each frame before the widgets draw, so the
        args a step changes are sent before the next step looks at them)."""
        if self.steps and not self.finished:
            step = self.steps[0]
            if self._started is None:
                self._started = time.monotonic()
            if time.monotonic() - self._started > float(step.get("timeout", self.timeout)):
                self.fail(f"script step {step} timed out{self._why()}")
                return
            if not self._do(step):
                return
            self.steps.pop(0)
            self._started = None
            self._input_queued = False

    def _why(self) -> str:
        error = self.viz.result.error
        return f" (renderer error: {error})" if error else ""

    def _do(self, step: dict) -> bool:
        viz = self.viz
        if "wait" in step:
            if step["wait"] == "frame":
                if viz.result.error and viz.result.args == viz.sent_args and not step.get("allow_error"):
                    self.fail(f"the renderer failed: {viz.result.error}")
                    return False
                return viz.sent_args is not None and viz.result.args == viz.sent_args and (
                    viz.image_args == viz.sent_args or bool(viz.result.error))
            if step["wait"] == "export":
                return not viz.clip.busy and viz.clip.job is None
            if step["wait"] == "analysis":
                return not viz.analysis.busy and viz.equivariance.readout.job is None
            raise ScriptError(f"unknown wait {step['wait']!r}")
        if "set" in step:
            *path, attr = step["set"].split(".")
            target = viz
            for name in path:
                target = getattr(target, name)
            setattr(target, attr, step["value"])
            return True
        if "click" in step:
            if not self._input_queued:
                self._input_queued = viz.input.click_item(step["click"], tuple(step.get("at", (0.5, 0.5))))
                return False
            return viz.input.idle
        if "type" in step:
            if not self._input_queued:
                viz.input.type_text(step["type"])
                self._input_queued = True
            return viz.input.idle
        if "scroll_to" in step:
            rect = items.rects.get(step["scroll_to"])
            if rect is not None and rect.visible:
                return True
            items.scroll_to = step["scroll_to"]
            return False
        if "key" in step:
            if not self._input_queued:
                viz.input.press(step["key"], tuple(step.get("mods", ())))
                self._input_queued = True
            return viz.input.idle
        if "drag_image" in step:
            if not self._input_queued:
                rect = items.rects.get("##image")
                if rect is None:
                    return False
                cx, cy = rect.center
                dx, dy = step["drag_image"]
                viz.input.drag((cx, cy), (cx + dx, cy + dy))
                self._input_queued = True
            return viz.input.idle
        if "frames" in step:
            if self._frames_left is None:
                self._frames_left = int(step["frames"])
            self._frames_left -= 1
            if self._frames_left > 0:
                return False
            self._frames_left = None
            return True
        if "dump" in step:
            self._after_draw.append(lambda: self.dump(step["dump"]))
            return True
        if "save_gui" in step:
            self._after_draw.append(lambda: viz.save_gui(step["save_gui"]))
            return True
        if "quit" in step:
            self.exit_code = int(step["quit"])
            viz.request_close()
            return True
        raise ScriptError(f"unknown script step {step}")

    def _run_after_draw(self) -> None:
        hooks, self._after_draw = self._after_draw, []
        for hook in hooks:
            hook()

    def dump(self, path: str) -> None:
        """The state a test checks: what is on screen, the args, the shown layer, torch in this process."""
        viz = self.viz
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        result = viz.result
        layer = viz.layer.selected
        state = {
            "seed": viz.latent.seed,
            "latent": [list(p) for p in viz.args.latent],
            "args_layer": viz.args.layer,
            "fft_show": viz.args.fft_show,
            "shown_layer": None if layer is None else layer.name,
            "shown_shape": None if layer is None else list(layer.shape),
            "layers": [info.name for info in viz.layers],
            "image_rect": list(viz.image_view.rect) if viz.image_view.rect else None,
            "texture_size": [viz.texture.width, viz.texture.height],
            "result_args_match": viz.image_args == viz.args,
            "error": result.error,
            "message": result.message,
            "model_family": viz.model_info.family,
            "untrained": viz.model_info.untrained,
            "last_saved": viz.capture.last_saved,
            "last_clip": viz.clip.last_output,
            "clip_frames": viz.clip.num_frames(),
            "clip_duration": viz.clip.duration,
            "notes": [text for _, text in viz.notes],
            "torch_imported": "torch" in sys.modules,
            "renderer_pid": getattr(viz.client, "pid", None),
            "analysis": dataclasses.asdict(viz.analysis.state),
            "equivariance_readout": viz.equivariance.readout.values,
            "equivariance_error": viz.equivariance.readout.error,
            "equivariance_error_image": viz.equivariance.readout.data is not None
            and viz.equivariance.readout.data.error_image is not None,
        }
        status = viz.client.status(timeout=30)
        state["worker"] = dataclasses.asdict(status) if status is not None else None
        state["child_processes"] = [[p.pid, " ".join(p.cmdline())] for p in psutil.Process().children(recursive=True)]
        spec = viz.clip.last_spec
        state["last_clip_base"] = dataclasses.asdict(spec.base) if spec is not None else None
        state["last_clip_rendered_with"] = viz.clip.last_rendered_with
        np.save(path.with_suffix(".screen.npy"), viz.read_pixels())
        if result.image is not None:
            np.save(path.with_suffix(".image.npy"), result.image)
        path.write_text(json.dumps(state, indent=1))
