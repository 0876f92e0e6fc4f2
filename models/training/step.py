"""The CAST networks for training and one optimisation step (D step → MSP step → G step).

Follows the reference ``optimize_parameters`` exactly; see ../shared/reference/CAST_FACTS.md §2–§5.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import kornia.augmentation as K
import torch
from torch import Tensor, nn

from models import functional as Fn
from models.decoder import Decoder
from models.discriminator import NLayerDiscriminator, xavier_init_
from models.encoder import Encoder
from models.losses import StyleQueues, cycle_l1, hinge_d, hinge_g, info_nce, style_nce, wide
from models.projector import Projector, StyleExtractor, normal_init_
from models.training.config import TrainConfig
from models.training.data import mix_seed
from models.training.distributed import average_gradients

#: official checkpoint names → attribute names of :class:`CASTTrainNets`.
OFFICIAL_NAMES: dict[str, str] = {
    "AE": "ae",
    "Dec_A": "dec_a",
    "Dec_B": "dec_b",
    "D": "msp_d",
    "P_style": "msp_p",
    "D_A": "d_a",
    "D_B": "d_b",
}


class CASTTrainNets(nn.Module):
    """All seven trained networks plus the style queues, initialised as the reference does."""

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(cfg.seed)
        self.ae = Encoder()
        self.dec_a = Decoder()
        self.dec_b = Decoder()
        self.msp_d = StyleExtractor()
        self.msp_p = Projector(cfg.loss.code_dim)
        self.d_a = NLayerDiscriminator()
        self.d_b = NLayerDiscriminator()
        normal_nets: list[nn.Module] = [self.ae, self.dec_a, self.dec_b, self.msp_d, self.msp_p]
        for m in normal_nets:
            normal_init_(m, cfg.init.normal_gain, gen)
        for d in (self.d_a, self.d_b):
            xavier_init_(d, cfg.init.xavier_gain, gen)
        self.queues = StyleQueues(cfg.loss.nce_layers, cfg.loss.code_dim, cfg.loss.queue_size, gen)

    def official_state_dicts(self) -> dict[str, dict[str, Tensor]]:
        """{'AE': …, 'Dec_A': …, …}: state dicts under the reference checkpoint names."""
        return {name: getattr(self, attr).state_dict() for name, attr in OFFICIAL_NAMES.items()}

    def load_official_state_dicts(self, states: dict[str, dict[str, Tensor]]) -> None:
        for name, attr in OFFICIAL_NAMES.items():
            getattr(self, attr).load_state_dict(states[name], strict=True)

    def group(self, name: str) -> list[nn.Module]:
        """Networks updated by optimiser ``G``, ``D`` or ``D_NCE``."""
        groups: dict[str, list[nn.Module]] = {
            "G": [self.ae, self.dec_a, self.dec_b],
            "D": [self.d_a, self.d_b],
            "D_NCE": [self.msp_d, self.msp_p],
        }
        return groups[name]

    def parameters_of(self, name: str) -> Iterator[nn.Parameter]:
        for m in self.group(name):
            yield from m.parameters()


def make_optimizers(nets: CASTTrainNets, cfg: TrainConfig) -> dict[str, torch.optim.Adam]:
    """The three Adam optimisers (G: AE+Dec_A+Dec_B, D: D_A+D_B, D_NCE: D+P_style)."""
    o = cfg.optim
    betas = (o.beta1, o.beta2)
    lrs = {"G": o.lr_g, "D": o.lr_d, "D_NCE": o.lr_d_nce}
    return {
        name: torch.optim.Adam(list(nets.parameters_of(name)), lr=lr, betas=betas)
        for name, lr in lrs.items()
    }


def lr_factor(unit_index: int, n_constant: int, n_decay: int) -> float:
    """The reference ``linear`` policy: 1 for n_constant units, then 1 − (u+1−n_constant)/(n_decay+1)."""
    return 1.0 - max(0, unit_index + 1 - n_constant) / float(n_decay + 1)


def set_requires_grad(modules: list[nn.Module], flag: bool) -> None:
    for m in modules:
        for p in m.parameters():
            p.requires_grad_(flag)


@dataclass
class StepOutput:
    """Scalar losses of one step and the images for previews (detached)."""

    losses: dict[str, float]
    real_a: Tensor
    real_b: Tensor
    fake_b: Tensor


class CASTObjective:
    """One training iteration of CAST on a batch; owns the patch sampler and precision policy."""

    def __init__(
        self,
        nets: CASTTrainNets,
        optimizers: dict[str, torch.optim.Adam],
        cfg: TrainConfig,
        device: torch.device,
        amp_dtype: torch.dtype | None,
        channels_last: bool,
    ) -> None:
        self.nets, self.opt, self.cfg, self.device = nets, optimizers, cfg, device
        self.amp_dtype = amp_dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        p = cfg.patch_size
        self.patch_sampler = K.RandomResizedCrop(
            (p, p), scale=cfg.loss.patch_scale, ratio=cfg.loss.patch_ratio
        )

    # --- pieces -------------------------------------------------------------------------------

    def _autocast(self) -> contextlib.AbstractContextManager[object]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def crops(self, x: Tensor, indices: Tensor, tag: str) -> Tensor:
        """A fresh kornia RandomResizedCrop per sample, seeded by (seed, sample, tag): resumable
        and identical however the global batch is split across processes."""
        out = []
        with torch.autocast(self.device.type, enabled=False):
            for i in range(x.shape[0]):
                s = mix_seed(self.cfg.seed, "patch", tag, int(indices[i]))
                with torch.random.fork_rng(devices=[]):
                    torch.default_generator.manual_seed(s)
                    out.append(self.patch_sampler(wide(x[i : i + 1])))
        return torch.cat(out).contiguous(memory_format=self.memory_format)

    def style_codes(self, x: Tensor) -> list[Tensor]:
        """Unit MSP codes (N, 2048) per NCE layer of images (N, 3, p, p)."""
        layers = self.cfg.loss.nce_layers
        with self._autocast():
            feats = self.nets.msp_d(x, layers, full=self.cfg.reference_compute)
            return self.nets.msp_p(feats, layers)

    def generate(self, real_a: Tensor, real_b: Tensor) -> dict[str, Tensor]:
        """fake_B, fake_A, rec_A, rec_B (the reference ``forward``)."""
        n = self.nets
        with self._autocast():
            e_a, e_b = n.ae(real_a), n.ae(real_b)
            if self.cfg.reference_compute:  # the reference encodes both inputs on every AE call
                e_a2, e_b2 = n.ae(real_a), n.ae(real_b)
            else:
                e_a2, e_b2 = e_a, e_b
            m_a, s_a = Fn.channel_mean_std(wide(e_a2))
            m_b, s_b = Fn.channel_mean_std(wide(e_b2))
            fake_b = n.dec_b(Fn.adain(wide(e_a), m_b, s_b).to(e_a.dtype))
            fake_a = n.dec_a(Fn.adain(wide(e_b), m_a, s_a).to(e_b.dtype))
            rec_a = n.dec_a(Fn.adain(wide(n.ae(fake_b)), m_a, s_a).to(e_a.dtype))
            rec_b = n.dec_b(Fn.adain(wide(n.ae(fake_a)), m_b, s_b).to(e_b.dtype))
        return {"fake_B": fake_b, "fake_A": fake_a, "rec_A": rec_a, "rec_B": rec_b}

    def _apply(self, name: str, loss: Tensor) -> None:
        opt = self.opt[name]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.nets.parameters_of(name))
        opt.step()

    # --- the iteration ------------------------------------------------------------------------

    def step(
        self, real_a: Tensor, real_b: Tensor, indices: Tensor, update: bool = True
    ) -> StepOutput:
        """D step → MSP step → G step on (N, 3, c, c) batches in [-1, 1].

        ``update=False`` computes every gradient but applies none (used to compare processes).
        """
        cfg, lc, n = self.cfg, self.cfg.loss, self.nets
        real_a = real_a.to(self.device, non_blocking=True).contiguous(
            memory_format=self.memory_format
        )
        real_b = real_b.to(self.device, non_blocking=True).contiguous(
            memory_format=self.memory_format
        )
        losses: dict[str, Tensor] = {}

        set_requires_grad(n.group("G"), True)
        set_requires_grad(n.group("D") + n.group("D_NCE"), False)
        out = self.generate(real_a, real_b)
        fake_b, fake_a = out["fake_B"], out["fake_A"]

        # 1. D step: D_A + D_B
        set_requires_grad(n.group("D"), True)
        with self._autocast():
            d_b = hinge_d(n.d_b(real_b), n.d_b(fake_b.detach())) * lc.lambda_gan_d_b
            d_a = hinge_d(n.d_a(real_a), n.d_a(fake_a.detach())) * lc.lambda_gan_d_a
        losses["D_B"], losses["D_A"] = d_b, d_a
        losses["D"] = 0.5 * (d_b + d_a)
        self._step_or_grad("D", losses["D"], update)
        set_requires_grad(n.group("D"), False)

        # 2. MSP step: D + P_style on two random crops of each artwork
        set_requires_grad(n.group("D_NCE"), True)
        if cfg.reference_compute:  # the reference also encodes two crops of the photo, unused
            self.style_codes(self.crops(real_a, indices, "msp_a"))
            self.style_codes(self.crops(real_a, indices, "msp_ax"))
        q = self.style_codes(self.crops(real_b, indices, "msp_q"))
        k = self.style_codes(self.crops(real_b, indices, "msp_k"))
        nce_d = style_nce(q, k, n.queues, lc.temperature, lc.queue_update, lc.enqueue_before_loss)
        losses["NCE_D"] = 0.5 * lc.lambda_nce_d * nce_d
        self._step_or_grad("D_NCE", losses["NCE_D"], update)
        set_requires_grad(n.group("D_NCE"), False)

        # 3. G step: AE + Dec_A + Dec_B
        with self._autocast():
            losses["G_A"] = hinge_g(n.d_b(fake_b)) * lc.lambda_gan_g_a
            losses["G_B"] = hinge_g(n.d_a(fake_a)) * lc.lambda_gan_g_b
        key_b = self.style_codes(self.crops(real_b, indices, "g_key"))
        query_b = self.style_codes(self.crops(fake_b, indices, "g_query"))
        if cfg.reference_compute:  # unused A-side codes of the reference
            self.style_codes(self.crops(real_a, indices, "g_key_a"))
            self.style_codes(self.crops(fake_a, indices, "g_query_a"))
        nce_g = sum(
            (
                info_nce(qq, kk, n.queues.queue(layer), lc.temperature)
                for layer, qq, kk in zip(lc.nce_layers, query_b, key_b)
            ),
            torch.zeros((), device=self.device),
        )
        losses["G_NCE_style"] = 0.5 * lc.lambda_nce_g * nce_g
        losses["cyc_A"] = cycle_l1(out["rec_A"], real_a) * lc.lambda_cyc
        losses["cyc_B"] = cycle_l1(out["rec_B"], real_b) * lc.lambda_cyc
        losses["cyc"] = 0.5 * (losses["cyc_A"] + losses["cyc_B"])
        losses["G"] = losses["cyc"] + losses["G_NCE_style"] + 0.5 * (losses["G_A"] + losses["G_B"])
        self._step_or_grad("G", losses["G"], update)

        return StepOutput(
            losses={k: float(v.detach()) for k, v in losses.items()},
            real_a=real_a.detach(),
            real_b=real_b.detach(),
            fake_b=wide(fake_b.detach()),
        )

    def _step_or_grad(self, name: str, loss: Tensor, update: bool) -> None:
        if update:
            self._apply(name, loss)
        else:
            for p in self.nets.parameters_of(name):
                p.grad = None
            loss.backward()
            average_gradients(self.nets.parameters_of(name))
