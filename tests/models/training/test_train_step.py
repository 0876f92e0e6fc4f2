"""One CAST training step: every loss term computed and finite, the right nets updated; config; schedule."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from models.errors import InputError
from models.training.config import TrainConfig
from models.training.step import CASTObjective, CASTTrainNets, lr_factor, make_optimizers
from realtime.config import load_config
from tests.models.training.trainhelp import tiny_config

CAST_YAML = Path(__file__).resolve().parents[3] / "configs" / "train" / "cast.yaml"
LOSSES = {"D_A", "D_B", "D", "NCE_D", "G_A", "G_B", "G_NCE_style", "cyc_A", "cyc_B", "cyc", "G"}


def test_cast_yaml_is_the_reference_recipe() -> None:
    cfg = load_config(TrainConfig, CAST_YAML)
    lc, oc = cfg.loss, cfg.optim
    assert (cfg.data.load_size, cfg.data.crop_size, cfg.data.flip, cfg.batch_size) == (
        286,
        256,
        True,
        1,
    )
    assert (lc.lambda_gan_g_a, lc.lambda_gan_g_b, lc.lambda_gan_d_a, lc.lambda_gan_d_b) == (
        0.1,
        0.1,
        1.0,
        1.0,
    )
    assert (lc.lambda_nce_g, lc.lambda_nce_d, lc.lambda_cyc) == (0.05, 1.0, 4.0)
    assert (lc.nce_layers, lc.temperature, lc.queue_size, lc.code_dim) == (
        (0, 1, 2, 3),
        0.07,
        4096,
        2048,
    )
    assert (
        lc.enqueue_before_loss and lc.patch_scale == (0.8, 1.0) and lc.patch_ratio == (0.75, 1.33)
    )
    assert (oc.lr_g, oc.lr_d, oc.lr_d_nce, oc.beta1, oc.beta2) == (1e-4, 1e-4, 1e-4, 0.5, 0.999)
    assert (oc.schedule_unit, oc.n_constant, oc.n_decay) == ("epoch", 200, 200)
    assert (cfg.init.normal_gain, cfg.init.xavier_gain) == (0.02, 0.02)
    # the YAML equals the dataclass defaults, except for more loader workers
    defaults = TrainConfig()
    assert dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_workers=2)) == defaults


def test_unknown_config_key_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss:\n  lambda_cycle: 4\n")
    with pytest.raises(InputError, match="unknown key"):
        load_config(TrainConfig, bad)


def test_lr_schedule_constant_then_linear() -> None:
    assert [lr_factor(u, 200, 200) for u in (0, 199)] == [1.0, 1.0]
    assert lr_factor(200, 200, 200) == pytest.approx(1 - 1 / 201)
    assert lr_factor(399, 200, 200) == pytest.approx(1 / 201)


def test_one_step_computes_every_loss_and_updates_each_group() -> None:
    cfg = tiny_config()
    nets = CASTTrainNets(cfg)
    obj = CASTObjective(nets, make_optimizers(nets, cfg), cfg, torch.device("cpu"), None, False)
    before = {k: v.clone() for k, v in nets.state_dict().items()}
    g = torch.Generator().manual_seed(0)
    a, b = (
        torch.rand(2, 3, 32, 32, generator=g) * 2 - 1,
        torch.rand(2, 3, 32, 32, generator=g) * 2 - 1,
    )
    out = obj.step(a, b, torch.tensor([0, 1]))
    assert set(out.losses) == LOSSES
    assert all(math.isfinite(v) for v in out.losses.values())
    lo = out.losses
    assert lo["G"] == pytest.approx(
        lo["cyc"] + lo["G_NCE_style"] + 0.5 * (lo["G_A"] + lo["G_B"]), rel=1e-5
    )
    assert lo["D"] == pytest.approx(0.5 * (lo["D_A"] + lo["D_B"]), rel=1e-5)
    after = nets.state_dict()
    for key in (
        "ae.enc_1.2.weight",
        "dec_a.decoder.28.weight",
        "dec_b.decoder.1.weight",
        "d_a.model.0.weight",
        "d_b.model.14.weight",
        "msp_d.enc_1.0.weight",
        "msp_p.projector3.4.weight",
    ):
        assert not torch.equal(before[key], after[key]), key
    assert torch.equal(
        before["msp_d.enc_6.0.weight"], after["msp_d.enc_6.0.weight"]
    )  # unused stage
    assert int(nets.queues.queue_ptr_B0) == 2  # the MSP step enqueued the batch once
    assert out.fake_b.shape == (2, 3, 32, 32)


def test_queue_update_off_keeps_the_negatives_fixed() -> None:
    cfg = tiny_config(**{"loss.queue_update": False})
    nets = CASTTrainNets(cfg)
    obj = CASTObjective(nets, make_optimizers(nets, cfg), cfg, torch.device("cpu"), None, False)
    before = {k: v.clone() for k, v in nets.queues.state_dict().items()}
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    out = obj.step(a, b, torch.tensor([0, 1]))
    assert all(math.isfinite(v) for v in out.losses.values())
    for key, value in nets.queues.state_dict().items():
        assert torch.equal(value, before[key]), key


@pytest.mark.slow
def test_reference_compute_gives_the_same_losses() -> None:
    cfg = tiny_config(**{"data.crop_size": 128, "data.load_size": 128})
    a = torch.rand(1, 3, 128, 128) * 2 - 1
    b = torch.rand(1, 3, 128, 128) * 2 - 1
    results = []
    for ref in (False, True):
        c = dataclasses.replace(cfg, reference_compute=ref)
        nets = CASTTrainNets(c)
        obj = CASTObjective(nets, make_optimizers(nets, c), c, torch.device("cpu"), None, False)
        results.append(obj.step(a, b, torch.tensor([0]), update=False).losses)
    for k in LOSSES:
        assert results[0][k] == pytest.approx(results[1][k], rel=1e-4, abs=1e-6), k


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_bf16_channels_last_step_is_finite() -> None:
    cfg = tiny_config(device="cuda", **{"data.crop_size": 64, "data.load_size": 64})
    dev = torch.device("cuda")
    nets = CASTTrainNets(cfg).to(dev).to(memory_format=torch.channels_last)
    obj = CASTObjective(nets, make_optimizers(nets, cfg), cfg, dev, torch.bfloat16, True)
    a, b = torch.rand(2, 3, 64, 64) * 2 - 1, torch.rand(2, 3, 64, 64) * 2 - 1
    for i in range(2):
        out = obj.step(a, b, torch.tensor([2 * i, 2 * i + 1]))
    assert set(out.losses) == LOSSES and all(math.isfinite(v) for v in out.losses.values())
