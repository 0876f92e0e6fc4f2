"""Pure tensor ops: statistics, AdaIN, strength, interpolation, colour, uint8, padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models import functional as Fn


def rand(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_channel_mean_std_is_unbiased_with_eps_inside_sqrt() -> None:
    x = rand(2, 3, 5, 7)
    mean, std = Fn.channel_mean_std(x)
    flat = x.reshape(2, 3, -1).double()
    n = flat.shape[-1]
    var = ((flat - flat.mean(-1, keepdim=True)) ** 2).sum(-1) / (n - 1)
    assert mean.shape == std.shape == (2, 3, 1, 1)
    torch.testing.assert_close(std.view(2, 3).double(), (var + 1e-5).sqrt(), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(mean.view(2, 3).double(), flat.mean(-1), rtol=1e-6, atol=1e-6)


def test_adain_gives_style_statistics() -> None:
    c = rand(1, 4, 16, 16, seed=1)
    s_mean, s_std = (
        torch.tensor([1.0, -2.0, 0.5, 3.0]).view(1, 4, 1, 1),
        torch.tensor([0.5, 2.0, 1.0, 0.1]).view(1, 4, 1, 1),
    )
    out = Fn.adain(c, s_mean, s_std)
    mean, std = Fn.channel_mean_std(out)
    torch.testing.assert_close(mean, s_mean, atol=1e-5, rtol=0)
    # std of output = s_std * sqrt(var_c / (var_c + eps)) ~ s_std
    torch.testing.assert_close(std, s_std, atol=1e-3, rtol=1e-3)


def test_adain_from_stats_equals_adain_with_own_stats() -> None:
    c = rand(2, 3, 8, 8, seed=2)
    s_mean, s_std = rand(1, 3, 1, 1, seed=3), rand(1, 3, 1, 1, seed=4).abs() + 0.1
    cm, cs = Fn.channel_mean_std(c)
    torch.testing.assert_close(
        Fn.adain_from_stats(c, cm, cs, s_mean, s_std), Fn.adain(c, s_mean, s_std)
    )


def test_blend_strength_endpoints_and_validation() -> None:
    t, c = rand(1, 2, 3, 3, seed=5), rand(1, 2, 3, 3, seed=6)
    assert Fn.blend_strength(t, c, 1.0) is t
    torch.testing.assert_close(Fn.blend_strength(t, c, 0.0), c)
    torch.testing.assert_close(Fn.blend_strength(t, c, 0.25), 0.25 * t + 0.75 * c)
    with pytest.raises(ValueError):
        Fn.blend_strength(t, c, 1.5)


def test_interpolating_stats_equals_interpolating_adain_features() -> None:
    c = rand(1, 8, 6, 6, seed=7)
    means = [rand(1, 8, 1, 1, seed=s) for s in (8, 9, 10)]
    stds = [rand(1, 8, 1, 1, seed=s).abs() + 0.2 for s in (11, 12, 13)]
    weights = [0.5, 0.3, 0.2]
    m, s = Fn.interpolate_stats(means, stds, [5.0, 3.0, 2.0])  # normalised internally
    mixed = Fn.adain(c, m, s)
    expected = sum(w * Fn.adain(c, mi, si) for w, mi, si in zip(weights, means, stds))
    assert isinstance(expected, torch.Tensor)
    torch.testing.assert_close(mixed, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("weights", [[1.0], [-1.0, 2.0], [0.0, 0.0], [float("nan"), 1.0]])
def test_bad_weights_are_refused(weights: list[float]) -> None:
    with pytest.raises(ValueError):
        Fn.normalize_weights(weights, 2)


def test_preserve_color_keeps_content_chroma_and_stylized_luma() -> None:
    content = rand(1, 3, 8, 8, seed=14).clamp(-0.8, 0.8)
    stylized = rand(1, 3, 8, 8, seed=15).clamp(-0.8, 0.8)
    out = Fn.preserve_color(stylized, content)
    to01 = lambda x: (x + 1) / 2  # noqa: E731
    luma = lambda x: 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # noqa: E731
    unclipped = (out > -1 + 1e-6) & (out < 1 - 1e-6)
    mask = unclipped.all(dim=1)
    torch.testing.assert_close(luma(to01(out))[mask], luma(to01(stylized))[mask], atol=1e-5, rtol=0)
    chroma_out = to01(out) - luma(to01(out)).unsqueeze(1)
    chroma_c = to01(content) - luma(to01(content)).unsqueeze(1)
    torch.testing.assert_close(
        chroma_out.permute(0, 2, 3, 1)[mask], chroma_c.permute(0, 2, 3, 1)[mask], atol=1e-5, rtol=0
    )


def test_uint8_round_trip_and_layouts() -> None:
    img = torch.randint(0, 256, (5, 7, 3), dtype=torch.uint8)
    x = Fn.uint8_to_unit(img)
    assert x.shape == (1, 3, 5, 7) and x.min() >= -1 and x.max() <= 1
    assert torch.equal(Fn.unit_to_uint8(x, rounding="round")[0], img)
    # truncation maps exactly-representable levels back too, and clamps out-of-range
    assert Fn.unit_to_uint8(torch.full((1, 3, 1, 1), 3.0))[0, 0, 0].tolist() == [255, 255, 255]
    assert Fn.unit_to_uint8(torch.full((1, 3, 1, 1), -3.0))[0, 0, 0].tolist() == [0, 0, 0]
    with pytest.raises(TypeError):
        Fn.uint8_to_unit(img.float())


@pytest.mark.parametrize(("h", "w"), [(204, 260), (8, 8), (1, 1), (3, 13), (17, 9)])
def test_pad_and_crop_are_inverse(h: int, w: int) -> None:
    x = rand(1, 3, h, w, seed=16)
    padded, pads = Fn.pad_to_multiple(x, 8)
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert min(padded.shape[-2:]) >= 16
    assert torch.equal(Fn.crop_padding(padded, pads), x)


def test_padding_is_reflection_when_possible() -> None:
    x = torch.arange(10.0).view(1, 1, 1, 10).expand(1, 1, 12, 10).contiguous()
    padded, (left, right, _, _) = Fn.pad_to_multiple(x, 8)
    assert (left, right) == (3, 3)
    assert padded[0, 0, 0, :4].tolist() == [3.0, 2.0, 1.0, 0.0]  # reflect, not replicate


# --- exact conv rewrites ------------------------------------------------------------------------


def test_fold_pointwise_into_conv_commutes_with_reflection_padding() -> None:
    pw, conv = torch.nn.Conv2d(3, 4, 1).double(), torch.nn.Conv2d(4, 6, 3).double()
    x = rand(2, 3, 7, 9, seed=20).double()
    want = conv(F.pad(pw(x), (1, 1, 1, 1), mode="reflect"))
    w, b = Fn.fold_pointwise_into_conv(pw.weight, pw.bias, conv.weight, conv.bias)
    assert w.shape == (6, 3, 3, 3) and b.shape == (6,)
    got = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w, b)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("h", "w"), [(1, 1), (1, 4), (3, 5), (8, 8), (6, 11)])
def test_up2_conv3_equals_upsample_reflect_pad_conv(h: int, w: int) -> None:
    conv = torch.nn.Conv2d(5, 7, 3).double()
    x = rand(2, 5, h, w, seed=21).double()
    up = F.interpolate(x, scale_factor=2, mode="nearest")
    want = conv(F.pad(up, (1, 1, 1, 1), mode="reflect"))  # (2, 7, 2h, 2w)
    w4, b4 = Fn.up2_conv3_phase_weights(conv.weight, conv.bias)
    assert w4.shape == (28, 5, 2, 2) and b4.shape == (28,)
    got = Fn.up2_conv3(x, w4, b4)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_up2_conv3_keeps_channels_last() -> None:
    conv = torch.nn.Conv2d(4, 3, 3)
    x = rand(1, 4, 6, 5, seed=22).contiguous(memory_format=torch.channels_last)
    w4, b4 = Fn.up2_conv3_phase_weights(conv.weight, conv.bias)
    padded = Fn.replicate_pad1(x)
    assert padded.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(padded, F.pad(x, (1, 1, 1, 1), mode="replicate"))
    got = Fn.up2_conv3(x, w4.contiguous(memory_format=torch.channels_last), b4)
    assert got.is_contiguous(memory_format=torch.channels_last)
    want = conv(F.pad(F.interpolate(x, scale_factor=2.0), (1, 1, 1, 1), mode="reflect"))
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_subsampled_channel_mean_reads_every_stride_th_pixel() -> None:
    x = torch.randn(2, 5, 9, 11).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    full = Fn.subsampled_channel_mean(x, stride=1)
    assert full.dtype == torch.float32 and full.shape == (5,)
    torch.testing.assert_close(full, x.float().mean(dim=(0, 2, 3)))
    want = x.float()[:, :, ::4, ::4].mean(dim=(0, 2, 3))
    torch.testing.assert_close(Fn.subsampled_channel_mean(x, stride=4), want)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("fn", [Fn.round_to_dtype, Fn.round_to_dtype_arith])
def test_round_to_dtype_lands_on_values_of_the_dtype(fn, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(1)
    scale = torch.exp2(torch.randint(-20, 14, (20000,), generator=g).float())
    x = torch.randn(20000, generator=g) * scale
    x = torch.cat([x, torch.tensor([0.0, 1.0, -2.0, 3.0, 255.9, 2.0**-30])])
    got = fn(x, dtype)
    assert torch.equal(got.to(dtype).float(), got)  # exactly representable
    assert (got == x.to(dtype).float()).float().mean() >= 0.999  # the nearest, almost always


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_centred_conv_terms_shift_a_reflect_padded_conv_exactly(dtype: torch.dtype) -> None:
    """conv(pad(s + offset)) + b = conv(pad(s)) + bias' + out_offset, for any offset; the
    out_offset is near the output's mean and exact in ``dtype`` (so is the ReLU threshold)."""
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    b = torch.randn(5, generator=g, dtype=torch.float64)
    s = torch.randn(2, 4, 6, 7, generator=g, dtype=torch.float64)
    offset = 20 * torch.randn(4, generator=g, dtype=torch.float64)
    mean = Fn.subsampled_channel_mean(s, stride=2)
    bias, out_offset = Fn.centred_conv_terms(w.sum(dim=(2, 3)), b, offset, mean, dtype)

    def conv(x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), w, bias)

    want = conv(s + offset.view(1, -1, 1, 1), b)
    got = conv(s, bias) + out_offset.view(1, -1, 1, 1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-10)
    assert torch.equal(out_offset.to(dtype).double(), out_offset)
    spread = want.std(dim=(0, 2, 3))
    assert ((want.mean(dim=(0, 2, 3)) - out_offset).abs() < spread).all()


def test_centred_conv_terms_give_the_four_phases_one_offset() -> None:
    """A phase conv (:func:`Fn.up2_conv3`) with bf16-rounded weights: the phases' weight sums
    differ by the rounding, each phase gets its own bias, all share one output offset."""
    g = torch.Generator().manual_seed(2)
    w = torch.randn(5, 4, 3, 3, generator=g, dtype=torch.float64)
    w4, b4 = Fn.up2_conv3_phase_weights(w, torch.randn(5, generator=g, dtype=torch.float64))
    w4 = w4.to(torch.bfloat16).double()
    s = torch.randn(1, 4, 6, 7, generator=g, dtype=torch.float64)
    offset = 20 * torch.randn(4, generator=g, dtype=torch.float64)
    bias, out_offset = Fn.centred_conv_terms(
        w4.sum(dim=(2, 3)), b4, offset, s.mean(dim=(0, 2, 3)), torch.bfloat16, phases=4
    )
    assert bias.shape == (20,) and out_offset.shape == (5,)
    want = F.conv2d(Fn.replicate_pad1(s + offset.view(1, -1, 1, 1)), w4, b4)
    got = F.conv2d(Fn.replicate_pad1(s), w4, bias) + out_offset.repeat(4).view(1, -1, 1, 1)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-10)
