"""The Equivariance section's live readout: EQ-T, EQ-T frac and EQ-R (PSNR, dB) of the latent on screen
over a few random transforms, measured in the background on request or once the latent has settled,
and the |difference| image of the user's own transform (what an exactly equivariant network would show
versus what this one renders)."""

from __future__ import annotations

import math
import time

from imgui_bundle import imgui

from gui_utils import imgui_utils
from gui_utils.gl_utils import Texture
from gui_utils.imgui_utils import button, checkbox
from renderer.conventions import IDENTITY
from renderer.protocol import READOUT_SAMPLES, EquivarianceData, EquivarianceRequest, RenderArgs

SETTLE_S = 1.0                  # the latent must stay unchanged this long before an automatic readout
MEASURE_LABEL = "Measure##eq"
AUTO_LABEL = "Auto##eqreadout"
ERROR_IMAGE_LABEL = "Error image"
ERROR_COLOR = (1.0, 0.45, 0.4, 1.0)
NOT_APPLICABLE = ("The equivariance metrics (EQ-T, EQ-T frac, EQ-R) do not apply to this model: it has no input "
                  "transform, so its output cannot be translated or rotated through its input (StyleGAN2).")


class EquivarianceReadout:
    def __init__(self, viz) -> None:
        self.viz = viz
        self.auto = False
        self.error_image = False
        self.job = None
        self.data: EquivarianceData | None = None
        self.measured: RenderArgs | None = None   # what `data` is of
        self.error: str | None = None
        self.drawn_stale: bool | None = None        # the readout as last drawn said "earlier latent" (tests)
        self._pending: RenderArgs | None = None
        self._job_key: RenderArgs | None = None
        self._key: RenderArgs | None = None
        self._key_since = 0.0
        self._texture: Texture | None = None
        self._texture_of: EquivarianceData | None = None

    @property
    def values(self) -> tuple[float, float, float] | None:
        d = self.data
        return None if d is None else (d.eqt, d.eqt_frac, d.eqr)

    def request_key(self) -> RenderArgs | None:
        """The parts of the current args a readout depends on (the transform only for the error image)."""
        a = self.viz.sent_args
        if a is None or not a.model:
            return None
        return RenderArgs(model=a.model, device=a.device, op_path=a.op_path, precision=a.precision, latent=a.latent,
                          w_file=a.w_file, class_idx=a.class_idx, mix_seed=a.mix_seed, mix_rows=a.mix_rows,
                          trunc_psi=a.trunc_psi, trunc_cutoff=a.trunc_cutoff,
                          input_transform=a.input_transform if self.error_image else IDENTITY)

    @staticmethod
    def _latent_of(key: RenderArgs | None) -> RenderArgs | None:
        """What the three metrics depend on (not the transform, which only the error image uses)."""
        return None if key is None else key.replace(input_transform=IDENTITY)

    def measure(self) -> None:
        key = self.request_key()
        if key is None or not self.viz.model_info.has_input_transform:
            return
        if self.job is not None:
            self._pending = key             # measured once the running job is done
            return
        self.job = self.viz.client.submit(EquivarianceRequest(args=key, num_samples=READOUT_SAMPLES,
                                                              error_map=self.error_image))
        self._job_key = key

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()
            self.job = None

    def poll(self) -> None:
        """Collect a finished readout; start the next one (pending, or automatic once the latent settles)."""
        if self.job is not None and self.job.done:
            if self.job.error:
                self.error = self.job.error
            elif self.job.value is not None:
                self.data, self.measured, self.error = self.job.value, self._job_key, None
            self.job = None
        key = self.request_key()
        now = time.monotonic()
        if key != self._key:
            self._key, self._key_since = key, now
        if self.job is None and self._pending is not None:
            self._pending = None
            self.measure()
        elif (self.auto and self.job is None and key is not None and key != self.measured
              and now - self._key_since >= SETTLE_S and self.viz.model_info.has_input_transform):
            self.measure()

    # Drawing ------------------------------------------------------------------------------

    def draw_not_applicable(self) -> None:
        imgui.push_style_color(imgui.Col_.text, imgui.ImVec4(*ERROR_COLOR))
        imgui.text_wrapped(NOT_APPLICABLE)
        imgui.pop_style_color()

    def draw_error_toggle(self) -> None:
        """The 'Error image' checkbox, drawn next to Untransform."""
        changed, self.error_image = checkbox(ERROR_IMAGE_LABEL, self.error_image)
        imgui_utils.help_marker("|difference| between the untransformed render moved by your transform (what an "
                                "exactly equivariant network would give) and the render with the transform; "
                                "computed with the next readout.")
        if changed and self.error_image:
            self.measure()

    def draw(self) -> None:
        lay = self.viz.layout
        if button(MEASURE_LABEL, lay.button_width, enabled=self.viz.sent_args is not None):
            self.measure()
        imgui.same_line()
        _, self.auto = checkbox(AUTO_LABEL, self.auto)
        imgui_utils.help_marker(f"Measure after the latent has stayed unchanged for {SETTLE_S:g} s. {READOUT_SAMPLES} "
                                "random transforms of the current latent; PSNR in dB over the valid pixels.")
        if self.job is not None:
            imgui.same_line()
            imgui.progress_bar(self.job.progress, imgui.ImVec2(-1, 0), "measuring ...")
        if self.error:
            imgui.push_style_color(imgui.Col_.text, imgui.ImVec4(*ERROR_COLOR))
            imgui.text_wrapped(self.error)
            imgui.pop_style_color()
        d = self.data
        if d is None:
            imgui.text_disabled("EQ-T -   EQ-T frac -   EQ-R -")
            return
        stale = self.drawn_stale = self._latent_of(self.measured) != self._latent_of(self.request_key())
        imgui.text(f"EQ-T {_db(d.eqt)}   EQ-T frac {_db(d.eqt_frac)}   EQ-R {_db(d.eqr)}")
        imgui.same_line()
        imgui.text_disabled(f"({d.num_samples} samples{', earlier latent' if stale else ''})")
        if self.error_image and d.error_image is not None:
            self._draw_error_image(d)

    def _draw_error_image(self, d: EquivarianceData) -> None:
        lay = self.viz.layout
        if d.transform_is_identity:
            imgui.text_disabled("Error image: set a translation or rotation (it is zero for the identity).")
            return
        if self._texture is None:
            self._texture = Texture()
        if self._texture_of is not d:
            self._texture.upload(d.error_image)
            self._texture_of = d
        size = lay.error_image_size
        imgui.image(imgui.ImTextureRef(self._texture.id), imgui.ImVec2(size, size))
        imgui_utils.items.record("##error image")
        imgui.same_line()
        imgui.text_wrapped(f"|difference|, bright = {d.error_max:.3g}\n(images span -1..1)\n"
                           f"PSNR {_db(d.error_psnr)}\n{d.error_method}")


def _db(value: float) -> str:
    return f"{value:.2f} dB" if math.isfinite(value) else ("inf dB" if value == math.inf else "-")
