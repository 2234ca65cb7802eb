"""PyTorch reference for bench/train-step.ts: the same U-Net as src/model/unet.ts
(same blocks, channels, attention placement, parameter count), trained with the
same step (MSE regression, Adam, global-norm clipping) on random data.

Usage: OMP_WAIT_POLICY=PASSIVE python3 bench/train_step_torch.py --image-size 32 \
  --base 32 --mults 1,2,2 --res-blocks 2 --attn 8 --groups 8 --batch 64 --steps 4 --threads 2
Prints one JSON line: params, img_s, fwd_ms, peak_rss_mb.
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, cin, cout, tdim, groups):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(tdim, cout)
        self.norm2 = nn.GroupNorm(groups, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb_act):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(emb_act)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    def __init__(self, ch, groups):
        super().__init__()
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.proj = nn.Linear(ch, ch)

    def forward(self, x):
        n, c, h, w = x.shape
        hn = self.norm(x).permute(0, 2, 3, 1).reshape(n, h * w, c)
        q, k, v = self.qkv(hn).chunk(3, dim=2)
        att = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(c), dim=-1)
        o = self.proj(att @ v).reshape(n, h, w, c).permute(0, 3, 1, 2)
        return x + o


class UNet(nn.Module):
    def __init__(self, image_size, in_ch, base, mults, res_blocks, attn, groups):
        super().__init__()
        self.base = base
        tdim = 4 * base
        self.temb0 = nn.Linear(base, tdim)
        self.temb1 = nn.Linear(tdim, tdim)
        self.conv_in = nn.Conv2d(in_ch, base, 3, padding=1)
        chans = [m * base for m in mults]
        resos = [image_size // 2 ** i for i in range(len(mults))]
        self.down = nn.ModuleList()
        skip_ch = [base]
        ch = base
        for l, lc in enumerate(chans):
            for _ in range(res_blocks):
                self.down.append(ResBlock(ch, lc, tdim, groups))
                ch = lc
                if resos[l] in attn:
                    self.down.append(Attention(ch, groups))
                self.down.append(nn.Identity())  # marks a skip push
                skip_ch.append(ch)
            if l < len(chans) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                self.down.append(nn.Identity())
                skip_ch.append(ch)
        self.mid = nn.ModuleList([ResBlock(ch, ch, tdim, groups), Attention(ch, groups), ResBlock(ch, ch, tdim, groups)])
        self.up = nn.ModuleList()
        for l in reversed(range(len(chans))):
            lc = chans[l]
            for _ in range(res_blocks + 1):
                sc = skip_ch.pop()
                self.up.append(ResBlock(ch + sc, lc, tdim, groups))
                ch = lc
                if resos[l] in attn:
                    self.up.append(Attention(ch, groups))
            if l > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
                self.up.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.out_norm = nn.GroupNorm(groups, ch)
        self.out_conv = nn.Conv2d(ch, in_ch, 3, padding=1)

    def forward(self, x, t):
        half = self.base // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / max(half - 1, 1))
        a = t[:, None] * freqs[None, :]
        emb = self.temb1(F.silu(self.temb0(torch.cat([torch.sin(a), torch.cos(a)], dim=1))))
        emb_act = F.silu(emb)
        h = self.conv_in(x)
        skips = [h]
        for m in self.down:
            if isinstance(m, nn.Identity):
                skips.append(h)
            elif isinstance(m, ResBlock):
                h = m(h, emb_act)
            else:
                h = m(h)
        h = self.mid[0](h, emb_act)
        h = self.mid[1](h)
        h = self.mid[2](h, emb_act)
        for m in self.up:
            if isinstance(m, ResBlock):
                h = m(torch.cat([h, skips.pop()], dim=1), emb_act)
            else:
                h = m(h)
        return self.out_conv(F.silu(self.out_norm(h)))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--in-ch", type=int, default=1)
    p.add_argument("--base", type=int, default=32)
    p.add_argument("--mults", default="1,2,2")
    p.add_argument("--res-blocks", type=int, default=2)
    p.add_argument("--attn", default="8")
    p.add_argument("--groups", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    mults = [int(m) for m in a.mults.split(",")]
    attn = [int(r) for r in a.attn.split(",") if r]
    net = UNet(a.image_size, a.in_ch, a.base, mults, a.res_blocks, attn, a.groups)
    params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.Adam(net.parameters(), lr=2e-4, betas=(0.9, 0.999), eps=1e-8)
    x = torch.randn(a.batch, a.in_ch, a.image_size, a.image_size)
    y = torch.randn_like(x)
    t = torch.randint(0, 1000, (a.batch,)).float()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(net(x, t), y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        return loss.item()

    step()  # warm-up
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    train_s = (time.perf_counter() - t0) / a.steps
    with torch.no_grad():
        net(x, t)
        t0 = time.perf_counter()
        reps = 3
        for _ in range(reps):
            net(x, t)
        fwd_ms = (time.perf_counter() - t0) / reps * 1000
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"params": params, "img_s": a.batch / train_s, "step_s": train_s, "fwd_ms": fwd_ms,
                      "peak_rss_mb": rss_mb, "threads": a.threads, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
