"""The renderer against the official outputs and against our generator called directly."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from renderer.worker.analysis.spectrum import power_spectrum
from renderer.worker.layer_hooks import capture_layer
from renderer.protocol import RenderArgs
from renderer.worker.render import Renderer

PSI = 0.7


def as_uint8(img: np.ndarray) -> np.ndarray:
    """[C, H, W] in [-1, 1] -> uint8 [H, W, C], written out here independently of the renderer."""
    return np.clip(img * 127.5 + 128, 0, 255).astype(np.uint8).transpose(1, 2, 0)


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture(scope="module")
def micro_sg3_model(tmp_path_factory) -> Path:
    """StyleGAN3-T with the full 14-layer design at 16 px and 8-16 channels: every layer, cheaply."""
    from renderer.worker.models import save_generator
    from renderer.worker.networks import build_generator

    G = build_generator("stylegan3", dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
                                          channel_base=64, channel_max=16))
    path = tmp_path_factory.mktemp("models") / "micro_sg3.safetensors"
    save_generator(G.eval(), path)
    return path


def render_ok(renderer: Renderer, **kwargs):
    result = renderer.render(RenderArgs(**kwargs))
    assert result.error is None, result.error
    return result


@pytest.mark.parametrize("name", ["sg3t_small_identity", "sg2_small"])
def test_seed_matches_official_output(renderer, reference, tmp_path, name):
    # The reference drew z as RandomState(seed).randn(4, z_dim): its first row is z of `seed`.
    from renderer.worker.models import save_generator

    ref = reference(name)
    path = tmp_path / f"{name}.safetensors"
    save_generator(ref.build(), path)
    seed = ref.meta["case"]["seed"]
    assert np.allclose(np.random.RandomState(seed).randn(ref["z"].shape[1]), ref["z"][0], atol=1e-6)
    result = render_ok(renderer, model=str(path), latent=((seed, 1.0),), trunc_psi=PSI)
    expected = as_uint8(ref["img_psi07"][0])
    assert result.image.shape == expected.shape
    # Float rounding can move a value across a uint8 step; nothing more than that.
    diff = np.abs(result.image.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_seed_matches_generator_called_directly(renderer, reference, tiny_sg2_model):
    G = reference("sg2_small").build()
    seed = 5
    z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
    img = G(z, None, truncation_psi=PSI, noise_mode="const")[0].numpy()
    result = render_ok(renderer, model=str(tiny_sg2_model), latent=((seed, 1.0),), trunc_psi=PSI)
    assert np.array_equal(result.image, as_uint8(img))
    assert result.model.family == "stylegan2" and result.device == "cpu"


def test_fractional_seed_is_bilinear_w_blend(renderer, reference, tiny_sg2_model):
    G = reference("sg2_small").build()
    x, y = 0.3, 1.6  # neighbours (0, 1), (1, 1), (0, 2), (1, 2) -> seeds 100, 101, 200, 201
    seeds_weights = [(100, 0.7 * 0.4), (101, 0.3 * 0.4), (200, 0.7 * 0.6), (201, 0.3 * 0.6)]
    w_avg = G.mapping.w_avg
    w = w_avg.clone()
    for seed, weight in seeds_weights:
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim))
        w = w + weight * (G.mapping(z, None, truncation_psi=PSI) - w_avg)
    img = G.synthesis(w, noise_mode="const")[0].numpy()

    from renderer.conventions import weighted_seeds

    result = render_ok(renderer, model=str(tiny_sg2_model), latent=weighted_seeds(x, y), trunc_psi=PSI)
    diff = np.abs(result.image.astype(int) - as_uint8(img).astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01


def test_style_mix_rows_come_from_mix_seed(renderer, reference, tiny_sg2_model):
    G = reference("sg2_small").build()
    rows = (0, 1, 2, 3)

    def ws_of(seed: int) -> torch.Tensor:
        return G.mapping(torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)), None, truncation_psi=PSI)

    ws = ws_of(7)
    ws[:, list(rows)] = ws_of(8)[:, list(rows)]
    expected = as_uint8(G.synthesis(ws, noise_mode="const")[0].numpy())
    mixed = render_ok(renderer, model=str(tiny_sg2_model), latent=((7, 1.0),), mix_seed=8, mix_rows=rows, trunc_psi=PSI)
    plain = render_ok(renderer, model=str(tiny_sg2_model), latent=((7, 1.0),), trunc_psi=PSI)
    diff = np.abs(mixed.image.astype(int) - expected.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 0.01
    assert psnr_uint8(mixed.image, plain.image) < 40  # the mix changed the image


def test_layer_list_names_follow_the_official_visualizer(renderer, tiny_model, tiny_sg2_model, reference):
    sg3 = render_ok(renderer, model=str(tiny_model)).layers
    table = reference("sg3t_small").layer_table["layers"]
    assert [info.name for info in sg3] == [row["name"] for row in table] + ["output"]
    for info, row in zip(sg3, table):
        assert info.shape[2:] == tuple(row["size"][::-1]) and info.shape[1] == row["channels"]
        assert info.sampling_rate == pytest.approx(row["sampling_rate"]) and info.cutoff == pytest.approx(row["cutoff"])
        assert info.half_width == (None if row["half_width"] is None else pytest.approx(row["half_width"]))

    sg2 = [info.name for info in render_ok(renderer, model=str(tiny_sg2_model)).layers]
    assert sg2[:5] == ["b4.conv1", "b4.torgb", "b4:0", "b4:1", "b8.conv0"]
    assert sg2[-1] == "output" and "b64:1" in sg2


@pytest.mark.parametrize("fixture", ["micro_sg3_model", "tiny_sg2_model"])
def test_every_listed_layer_can_be_captured_with_its_shape(renderer, request, fixture):
    model = str(request.getfixturevalue(fixture))
    layers = render_ok(renderer, model=model).layers
    assert len(layers) == (17 if fixture == "micro_sg3_model" else 25)  # input, L0..L14, output; b4: 4, b8..b64: 5 each, output
    for info in layers:
        result = render_ok(renderer, model=model, layer=info.name, sel_channels=1)
        assert result.image.shape == (info.shape[2], info.shape[3], 3), info.name
        assert np.array_equal(result.image[..., 0], result.image[..., 2])  # one channel shows as grey


@pytest.mark.parametrize("name", ["sg3t_small", "sg2_small"])
def test_captured_layers_equal_the_official_hooks(reference, name):
    # The official reference records synthesis-layer outputs (batch element 0) during the psi 0.7
    # run; a StyleGAN2 block's outputs are recorded as 'b4#0', 'b4#1' where we say 'b4:0', 'b4:1'.
    ref = reference(name)
    G = reference(name).build()
    ws = torch.from_numpy(ref["ws_psi07"])
    hooks = {k.removeprefix("synthesis.").replace("#", ":"): v for k, v in ref.hooks().items()
             if k.startswith("synthesis.") and not k.endswith(".affine")}
    for layer in list(hooks)[:: 5 if name == "sg3t_small" else 1]:
        got = capture_layer(G.synthesis, layer, lambda: G.synthesis(ws, noise_mode="const")).numpy()
        want = hooks[layer]
        assert got.shape[2:] == want.shape[2:], layer
        assert np.allclose(got[: want.shape[0], : want.shape[1]], want, atol=1e-4, rtol=1e-3), layer


def test_pure_sinusoid_spectrum_peaks_at_its_bin():
    h, w, kx, ky = 32, 48, 5, 3
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    x = torch.from_numpy(np.cos(2 * np.pi * (kx * cols / w + ky * rows / h)))[None].float() + 0.7
    power = power_spectrum(x, beta=8.0).numpy()
    assert power.shape == (h, w)
    peak = np.unravel_index(np.argmax(power), power.shape)
    # DC sits at (h // 2, w // 2); a real cosine has its two peaks at +-(ky, kx) from there.
    assert peak in {(h // 2 + ky, w // 2 + kx), (h // 2 - ky, w // 2 - kx)}
    assert power[h // 2, w // 2] < 1e-3 * power.max()  # the mean was removed


def test_fft_view_doubles_the_frame_width(renderer, tiny_sg2_model):
    plain = render_ok(renderer, model=str(tiny_sg2_model))
    with_fft = render_ok(renderer, model=str(tiny_sg2_model), fft_show=True)
    assert with_fft.image.shape == (plain.image.shape[0], 2 * plain.image.shape[1], 3)
    assert np.array_equal(with_fft.image[:, : plain.image.shape[1]], plain.image)


def test_translated_then_untransformed_matches_untranslated(renderer, sg3_identity_model):
    from renderer.conventions import as_matrix3, user_transform

    model = str(sg3_identity_model)
    shift = (3, -2)  # whole output pixels
    m = as_matrix3(user_transform((shift[0] / 64, shift[1] / 64)))
    plain = render_ok(renderer, model=model, latent=((1, 1.0),), trunc_psi=PSI).image
    moved = render_ok(renderer, model=model, latent=((1, 1.0),), trunc_psi=PSI, input_transform=m).image
    back = render_ok(renderer, model=model, latent=((1, 1.0),), trunc_psi=PSI, input_transform=m, untransform=True).image
    other = render_ok(renderer, model=model, latent=((2, 1.0),), trunc_psi=PSI).image
    # Compare away from the borders: the shifted-in strip and the filter's reach (3 px) hold no
    # information about the untranslated image.
    inner = np.s_[8:-8, 8:-8]
    aligned = psnr_uint8(back[inner], plain[inner])
    unaligned = psnr_uint8(moved[inner], plain[inner])
    unrelated = psnr_uint8(other[inner], plain[inner])
    # An unrelated seed scores what any two images of this network score; the translated frame
    # itself scores about the same. Untransformed, it must be far closer than either: a translation
    # by whole pixels is what StyleGAN3-T is equivariant to (EQ-T of trained models is 50-60 dB;
    # this small random network is less exact), so we ask for 10 dB above both and 30 dB absolute.
    assert aligned > max(unaligned, unrelated) + 10 and aligned > 30, (aligned, unaligned, unrelated)


def test_input_transform_does_not_touch_the_cached_network(renderer, tiny_model):
    from renderer.conventions import as_matrix3, user_transform

    model = str(tiny_model)
    before = render_ok(renderer, model=model, layer="input").image
    entry, _ = renderer.models.get(model, torch.device("cpu"))
    stored = entry.G.synthesis.input.transform.clone()
    assert not torch.allclose(stored, torch.eye(3))  # this reference network stores a non-identity transform
    render_ok(renderer, model=model, layer="input", input_transform=as_matrix3(user_transform((0.1, 0.2), 0.05)))
    assert torch.equal(entry.G.synthesis.input.transform, stored)
    assert np.array_equal(render_ok(renderer, model=model, layer="input").image, before)


def test_bad_model_paths_come_back_as_errors(renderer, tmp_path):
    missing = renderer.render(RenderArgs(model=str(tmp_path / "nope.pkl")))
    assert missing.error and "nope.pkl" in missing.error and missing.image is None
    corrupt = tmp_path / "corrupt.pkl"
    corrupt.write_bytes(b"\x80\x04this is not a pickle")
    result = renderer.render(RenderArgs(model=str(corrupt)))
    assert result.error and "corrupt.pkl" in result.error
    assert renderer.render(RenderArgs()).error.startswith("No model selected")


def test_unknown_layer_and_bad_w_file(renderer, tiny_sg2_model, tmp_path):
    result = renderer.render(RenderArgs(model=str(tiny_sg2_model), layer="b5.conv9"))
    assert result.error and "b5.conv9" in result.error and "b4.conv1" in result.error
    bad_w = tmp_path / "w.npy"
    np.save(bad_w, np.zeros([3, 7], dtype=np.float32))
    result = renderer.render(RenderArgs(model=str(tiny_sg2_model), w_file=str(bad_w)))
    assert result.error and "[3, 7]" in result.error


def test_w_file_reproduces_the_seed(renderer, reference, tiny_sg2_model, tmp_path):
    G = reference("sg2_small").build()
    w = G.mapping(torch.from_numpy(np.random.RandomState(4).randn(1, G.z_dim)), None, truncation_psi=PSI)
    np.save(tmp_path / "w.npy", w.numpy())
    from_file = render_ok(renderer, model=str(tiny_sg2_model), w_file=str(tmp_path / "w.npy")).image
    from_seed = render_ok(renderer, model=str(tiny_sg2_model), latent=((4, 1.0),), trunc_psi=PSI).image
    assert np.array_equal(from_file, from_seed)


def test_returned_w_saved_and_loaded_reproduces_the_frame(renderer, tiny_sg2_model, tmp_path):
    mixed = dict(model=str(tiny_sg2_model), latent=((3, 0.25), (4, 0.75)), mix_seed=9, mix_rows=(5, 6), trunc_psi=PSI)
    first = render_ok(renderer, **mixed)
    assert first.w is not None and first.w.shape == (first.model.num_ws, first.model.w_dim)
    np.save(tmp_path / "w.npy", first.w)
    again = render_ok(renderer, model=str(tiny_sg2_model), w_file=str(tmp_path / "w.npy"))
    assert np.array_equal(again.image, first.image)


def test_random_noise_is_reproducible_from_its_seed(renderer, tiny_sg2_model):
    model = str(tiny_sg2_model)
    a = render_ok(renderer, model=model, noise_mode="random", noise_seed=1).image
    b = render_ok(renderer, model=model, noise_mode="random", noise_seed=1).image
    c = render_ok(renderer, model=model, noise_mode="random", noise_seed=2).image
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_snapshot_replaced_on_disk_is_reloaded_and_a_broken_one_keeps_the_old(renderer, reference, tmp_path):
    from renderer.worker.models import save_generator

    path = tmp_path / "snapshot.safetensors"
    G = reference("sg2_small").build()
    save_generator(G, path)
    first = render_ok(renderer, model=str(path)).image

    with torch.no_grad():
        G.synthesis.b64.torgb.bias.add_(0.5)
    save_generator(G, tmp_path / "next.safetensors")
    os.replace(tmp_path / "next.safetensors", path)
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))
    second = render_ok(renderer, model=str(path)).image
    assert not np.array_equal(first, second)

    (tmp_path / "broken").write_bytes(b"garbage")
    os.replace(tmp_path / "broken", path)
    third = renderer.render(RenderArgs(model=str(path)))
    assert third.error is None and np.array_equal(third.image, second)
    assert third.message and "Still showing" in third.message


def test_nan_output_is_reported(renderer, reference, tmp_path):
    from renderer.worker.models import save_generator

    G = reference("sg2_small").build()
    with torch.no_grad():
        G.synthesis.b64.torgb.bias.fill_(float("nan"))
    save_generator(G, tmp_path / "nan.safetensors")
    result = renderer.render(RenderArgs(model=str(tmp_path / "nan.safetensors")))
    assert result.error and "NaN" in result.error


def test_bfloat16_preview_is_labelled(renderer, tiny_sg2_model):
    """The preview runs in bfloat16 where the CPU has bfloat16 instructions, labelled; elsewhere the
    frame is float32 and says why."""
    from torch_utils.ops import paths

    result = render_ok(renderer, model=str(tiny_sg2_model), precision="bfloat16")
    exact = render_ok(renderer, model=str(tiny_sg2_model)).image
    if paths.bfloat16_unsupported_reason(torch.device("cpu")) is None:
        assert result.precision.startswith("bfloat16")
        assert psnr_uint8(result.image, exact) > 20
    else:
        assert result.precision == "float32" and "bfloat16 instructions" in result.message
        assert np.array_equal(result.image, exact)


def test_cli_writes_the_frame_the_gui_shows(renderer, tiny_model, tmp_path, capsys):
    from renderer.capture import args_from_json
    from renderer.worker.cli_render import render_main
    from PIL import Image

    out = tmp_path / "frame.png"
    argv = [str(tiny_model), "--seed", "3", "--psi", "0.5", "--layer", "L2_36_64", "--fft",
            "--translate", "0.1", "0", "--rotate", "0.05", "--out", str(out)]
    assert render_main(argv) == 0
    saved = np.asarray(Image.open(out))
    args = args_from_json(tmp_path / "frame.json")
    assert args.latent == ((3, 1.0),) and args.layer == "L2_36_64" and args.fft_show
    assert np.array_equal(saved, render_ok(renderer, **{f: getattr(args, f) for f in args.__dataclass_fields__}).image)
    assert saved.shape == (36, 72, 3)


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, str(root / "visualizer.py"), "render", str(tmp_path / "missing.pkl"),
                          "--out", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "missing.pkl" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "x.png").exists()


def test_changing_model_returns_the_old_frames_free_memory(tiny_model, tiny_sg2_model, monkeypatch):
    """The renderer process keeps freed memory for the next frame (renderer/allocator.py); when the
    model changes it hands the free part back once, not on every frame."""
    import renderer.worker.render as render_module

    calls = []
    monkeypatch.setattr(render_module, "release_free_memory", lambda: calls.append(1) or True)
    r = Renderer()
    for model, expected in [(tiny_model, 0), (tiny_model, 0), (tiny_sg2_model, 1), (tiny_sg2_model, 1), (tiny_model, 2)]:
        result = r.render(RenderArgs(model=str(model), latent=((1, 1.0),)))
        assert result.error is None
        assert len(calls) == expected


def test_the_frame_says_how_many_fp16_layers_ran(tiny_model):
    """The official fp16 layers run in float16 only on CUDA and never with force_fp32; the result says
    how many ran (none here, on the CPU), and fp16_layers counts what would run on CUDA."""
    import torch

    from renderer.worker.models import load_generator
    from renderer.worker.render import fp16_layers

    G = load_generator(tiny_model)
    built = sum(1 for m in G.synthesis.modules() if getattr(m, "use_fp16", False))
    assert built > 0
    assert fp16_layers(G, torch.device("cuda"), force_fp32=False) == built
    assert fp16_layers(G, torch.device("cuda"), force_fp32=True) == 0
    assert fp16_layers(G, torch.device("cpu"), force_fp32=False) == 0
    result = Renderer().render(RenderArgs(model=str(tiny_model)))
    assert result.error is None and result.fp16_layers == 0 and result.op_path_note is None


def test_a_slow_to_start_path_warms_in_the_background_while_frames_use_the_next(tiny_model, monkeypatch):
    """Triton compiles per shape at first use. A newly loaded model's frames do not wait for it: the
    kernels are compiled by one synthesis pass in a thread, and frames use the next path of the
    automatic choice until then. Shown with the CPU path standing in for a slow-to-start one."""
    import renderer.worker.render as render_module

    monkeypatch.setattr(render_module, "SLOW_START_PATHS", ("cpu",))
    renderer = Renderer()
    args = RenderArgs(model=str(tiny_model), device="cpu")
    first = renderer.render(args)
    assert first.error is None and first.op_path == "reference" and "in the background" in first.message
    for thread in list(renderer.warmup._running.values()):
        thread.join(120)
    warm = renderer.render(args.replace(latent=((1, 1.0),)))
    assert warm.error is None and warm.op_path == "cpu" and not warm.message

    # A warm-up that failed (its outcome recorded as the reason) leaves the frames on the next path.
    failing = Renderer()
    failing.render(args)
    for thread in list(failing.warmup._running.values()):
        thread.join(120)
    monkeypatch.setattr(failing.warmup, "_done", {key: "RuntimeError: the compiler gave up"
                                                  for key in failing.warmup._done})
    after = failing.render(args.replace(latent=((2, 1.0),)))
    assert after.error is None and after.op_path == "reference" and "the compiler gave up" in after.message
