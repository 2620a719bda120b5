"""Scripted sessions through the real frame loop: the non-interactive --save-gui mode, and tests.

A script is a list of steps run one after another, each when the previous one is done; input steps
feed real ImGui mouse and key events (gui_utils.scripted_input). Steps (JSON objects):
    {"wait": "frame"}                       until the frame for the current args is on screen (or failed)
    {"wait": "export"}                      until the clip export has finished
    {"wait": "analysis"}                    until the Analysis section's and the equivariance readout's jobs are done
    {"wait": "snapshot", "name": FILE}     until the frame on screen is of the model file FILE (follow run)
    {"wait": "link", "state": STATE}       until a remote worker's link is in STATE ("connected", "reconnecting", ...)
    {"wait": "explore"}                     until the jobs of the Directions ... Run over time sections are done
    {"wait": "value", "path": P, "at_least": N}  until the attribute at dotted path P is at least N
                                            ("grows_by": N instead: at least N more than when the step began)
    {"set": "latent.x", "value": 5}         set a widget attribute (dotted path from the visualizer)
    {"click": LABEL}                        click the item drawn with LABEL (scrolls it into view);
                                            "at": [FX, FY] clicks at those fractions of its size;
                                            "button": 0/1/2 (left/right/middle), "count": 2 (double-click)
    {"wheel": LABEL, "by": N}               turn the mouse wheel N notches over LABEL ("at" as for click)
    {"type": TEXT}                          type TEXT into the focused field
    {"scroll_to": LABEL}                    scroll the control pane until LABEL is wholly visible
    {"key": "right", "mods": ["ctrl"]}      press and release a key
    {"drag_image": [DX, DY]}                drag across the image from its centre
    {"drag": LABEL, "by": [DX, DY]}         press on the item drawn with LABEL (at its centre, or at fractions
                                            "at" of its size plus "offset" pixels), move by DX, DY, release;
                                            "button" as for click
    {"hover": LABEL}                        move the mouse over the item drawn with LABEL
    {"drop": PATH}                          drop a file onto the window
    {"close_window": true}                  press the window's close button
    {"idle": SECONDS, "out": PATH}          ask for no frames for SECONDS; write the GUI process's CPU time,
                                            the wall time and the frames drawn meanwhile to PATH (JSON)
    {"busy": SECONDS, "out": PATH}          the same while asking for a frame at every turn (a baseline)
    {"frames": N}                           let N frames pass
    {"dump": PATH}                          write the visualizer's state as JSON (+ PATH.screen.npy, PATH.image.npy)
    {"save_gui": PATH}                      save the window as a PNG
    {"quit": CODE}                          close with this exit status (never asks)
    {"wait": "closed"}                      the last step: the user closes the window (exit status 0)
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

from imgui_bundle import imgui

from gui_utils.imgui_utils import ItemRect, items
from viz.session import to_json_data

SCRIPT_ENV = "STYLEGAN_VIZ_SCRIPT"
STEP_TIMEOUT = 120.0


class ScriptError(RuntimeError):
    pass


def _on_screen(label: str) -> ItemRect | None:
    """The item drawn with `label` if it was wholly visible in the last frame; else None, and its
    window scrolls towards it."""
    rect = items.rects.get(label)
    if rect is None or not rect.visible:
        items.scroll_to = label
        return None
    return rect


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
        self._baseline = None                   # a "grows_by" wait's value when its step began
        self._measuring: tuple[float, float, int] | None = None   # (wall, cpu, frames) when a CPU measure began
        self.waiting_for_close = False
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

    @property
    def wants_frames(self) -> bool:
        """Whether the window should keep drawing frames for the script (not while it measures idling)."""
        return bool(self.steps) and not self.finished and "idle" not in self.steps[0] and not self.waiting_for_close

    def window_closed(self) -> None:
        """The window closed by itself (the user quit): the end a last {"wait": "closed"} step waits for,
        reached there or during the step before it (the click that quit)."""
        if self.steps and self.steps[-1] == {"wait": "closed"} and len(self.steps) <= 2:
            self.exit_code = 0

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
            self._baseline = None

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
            if step["wait"] == "closed":
                self.waiting_for_close = True
                return False
            if step["wait"] == "snapshot":
                return Path(viz.model_info.snapshot).name == step["name"] and viz.image_args == viz.sent_args
            if step["wait"] == "link":
                link = viz.status_bar.link()
                return link is not None and link.state.value == step["state"]
            if step["wait"] == "explore":
                return not viz.explore.busy
            if step["wait"] == "value":
                target = viz
                for name in step["path"].split("."):
                    target = getattr(target, name)
                if "grows_by" in step:
                    if self._baseline is None:
                        self._baseline = target
                    return target >= self._baseline + step["grows_by"]
                return target is not None and target >= step["at_least"]
            raise ScriptError(f"unknown wait {step['wait']!r}")
        if "set" in step:
            *path, attr = step["set"].split(".")
            target = viz
            for name in path:
                target = getattr(target, name)
            value = step["value"]
            if isinstance(getattr(target, attr, None), (set, tuple)) and isinstance(value, list):
                value = type(getattr(target, attr))(value)     # JSON lists to the attribute's own collection
            setattr(target, attr, value)
            return True
        if "click" in step:
            if not self._input_queued:
                if "button" in step or "count" in step:
                    rect = _on_screen(step["click"])
                    if rect is None:
                        return False
                    fx, fy = step.get("at", (0.5, 0.5))
                    viz.input.click(rect.x0 + fx * (rect.x1 - rect.x0), rect.y0 + fy * (rect.y1 - rect.y0),
                                    button=int(step.get("button", 0)), count=int(step.get("count", 1)))
                    self._input_queued = True
                else:
                    self._input_queued = viz.input.click_item(step["click"], tuple(step.get("at", (0.5, 0.5))))
                return False
            return viz.input.idle
        if "wheel" in step:
            if not self._input_queued:
                rect = _on_screen(step["wheel"])
                if rect is None:
                    return False
                fx, fy = step.get("at", (0.5, 0.5))
                viz.input.wheel(rect.x0 + fx * (rect.x1 - rect.x0), rect.y0 + fy * (rect.y1 - rect.y0), float(step["by"]))
                self._input_queued = True
            return viz.input.idle
        if "type" in step:
            if not self._input_queued:
                viz.input.type_text(step["type"])
                self._input_queued = True
            return viz.input.idle
        if "scroll_to" in step:
            return _on_screen(step["scroll_to"]) is not None
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
        if "drag" in step:
            if not self._input_queued:
                rect = _on_screen(step["drag"])
                if rect is None:
                    return False
                fx, fy = step.get("at", (0.5, 0.5))
                ox, oy = step.get("offset", (0, 0))
                cx, cy = rect.x0 + fx * (rect.x1 - rect.x0) + ox, rect.y0 + fy * (rect.y1 - rect.y0) + oy
                dx, dy = step["by"]
                viz.input.drag((cx, cy), (cx + dx, cy + dy), steps=int(step.get("steps", 8)),
                               button=int(step.get("button", 0)))
                self._input_queued = True
            return viz.input.idle
        if "hover" in step:
            if not self._input_queued:
                rect = _on_screen(step["hover"])
                if rect is None:
                    return False
                viz.input.move(*rect.center)
                self._input_queued = True
            return viz.input.idle
        if "drop" in step:
            if not self._input_queued:          # taken at the start of the next frame: done after that one
                viz.dropped_paths.append(str(step["drop"]))
                self._input_queued = True
                return False
            return True
        if "close_window" in step:           # as the window's close button does
            viz.request_close()
            viz.on_close_request()
            return True
        if "idle" in step or "busy" in step:
            return self._measure_cpu(step)
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

    def _measure_cpu(self, step: dict) -> bool:
        process = psutil.Process()
        cpu = sum(process.cpu_times()[:2])
        now = time.monotonic()
        if self._measuring is None:
            self._measuring = (now, cpu, self.viz.frames_drawn)
            return False
        started, cpu0, frames0 = self._measuring
        seconds = float(step.get("idle", step.get("busy")))
        if now - started < seconds:
            self.viz.wake_after(started + seconds - now)
            return False
        self._measuring = None
        record = {"wall_seconds": now - started, "cpu_seconds": cpu - cpu0, "frames": self.viz.frames_drawn - frames0}
        Path(step["out"]).write_text(json.dumps(record))
        return True

    def _run_after_draw(self) -> None:
        hooks, self._after_draw = self._after_draw, []
        for hook in hooks:
            hook()

    def _gui_state(self) -> dict:
        """The window's own state: settings, dialogs, history, model loading, layout."""
        viz = self.viz
        shown = viz.image_args
        return {
            "settings": to_json_data(viz.settings()),
            "should_close": viz.should_close,
            "quit_dialog": viz.quit_dialog.is_open,
            "quit_reasons": list(viz.quit_dialog.reasons),
            "path_dialog": viz.dialog.is_open,
            "typing": imgui.get_io().want_text_input,
            "popup_open": imgui.is_popup_open("", imgui.PopupFlags_.any_popup_id | imgui.PopupFlags_.any_popup_level),
            "can_undo": viz.history.can_undo,
            "can_redo": viz.history.can_redo,
            "recent": list(viz.recent.paths),
            "model_path": viz.model.path,
            "model_pending": viz.model.pending,
            "path_field": viz.model.path_field,
            "follow": viz.model.follow,
            "model_tooltip": viz.model.tooltip_shown,
            "model_origin": viz.model.origin_shown,
            "browser_dir": str(viz.model.browser.directory),
            "browser_entries": [e.label for e in viz.model.browser._entries()] if viz.model.show_browser else [],
            "keyframes": [[k.position[0], k.position[1], k.translate[0], k.translate[1], k.rotate]
                          for k in viz.clip.keyframes],
            "image_stale": viz.image_is_stale,
            "image_model": shown.model if shown is not None else None,
            "args_model": viz.args.model,
            "errors_shown": list(viz.errors_shown),
            "cutoff_shape": viz.image_view.cutoff_shape,
            "view_zoom": viz.image_view.view_zoom,
            "layer_rows": [list(row) for row in viz.layer.drawn_rows],
            "ui_scale": viz.ui_scale,
            "font_size": viz.layout.font_size,
            "window_size": list(viz.size),
            "image_area": list(viz.image_view.area()),
            "windows": {label.removesuffix("##window"): [r.x0, r.y0, r.x1, r.y1]
                        for label, r in items.rects.items() if label.endswith("##window")},
            "plots": {label.removeprefix("##"): [r.x0, r.y0, r.x1, r.y1]
                      for label, r in items.rects.items() if label.startswith("##") and label.endswith(" plot")},
            "open_sections": sorted(viz.open_sections),
            "show_analysis": viz.show_analysis,
            "session_path": str(viz.sessions.named_path) if viz.sessions.named_path else None,
            "frames_drawn": viz.frames_drawn,
            "unsaved_work": viz.unsaved_work(),
        }

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
            "notes": list(viz.note_log),
            "torch_imported": "torch" in sys.modules,
            "renderer_pid": getattr(viz.client, "pid", None),
            "analysis": dataclasses.asdict(viz.analysis.drawn),
            "explore": {name: dataclasses.asdict(w.drawn) for name, w in viz.explore.widgets.items()},
            "equivariance_readout": viz.equivariance.readout.values,
            "equivariance_error": viz.equivariance.readout.error,
            "equivariance_readout_stale": viz.equivariance.readout.drawn_stale,
            "equivariance_error_image": viz.equivariance.readout.data is not None
            and viz.equivariance.readout.data.error_image is not None,
        }
        state["status_line"] = [viz.status_bar.text()[0], viz.status_bar.right_text()]
        link = viz.status_bar.link()
        state["link"] = None if link is None else {"state": link.state.value, "message": link.message,
                                                   "server": link.server}
        listing = viz.client.list_models(viz.model.browse_dir, timeout=30) if viz.model.remote else None
        state["browser"] = None if listing is None else [[e.name, e.kind] for e in listing.entries]
        status = viz.client.status(timeout=30)
        state["worker"] = dataclasses.asdict(status) if status is not None else None
        state.update(self._gui_state())
        state["child_processes"] = [[p.pid, " ".join(p.cmdline())] for p in psutil.Process().children(recursive=True)]
        spec = viz.clip.last_spec
        state["last_clip_base"] = dataclasses.asdict(spec.base) if spec is not None else None
        state["last_clip_rendered_with"] = viz.clip.last_rendered_with
        np.save(path.with_suffix(".screen.npy"), viz.read_pixels())
        if result.image is not None:
            np.save(path.with_suffix(".image.npy"), result.image)
        path.write_text(json.dumps(state, indent=1))
