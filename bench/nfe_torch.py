"""PyTorch reference of the diffuse-ts U-Net (src/model/unet.ts), for bench/nfe.ts.

Same architecture, same weights (a safetensors file written by the TS bench,
parsed here with struct/json + torch.frombuffer: no extra packages), NCHW.

usage: python3 bench/nfe_torch.py WEIGHTS.safetensors CONFIG.json INPUT.bin OUTPUT.bin BATCHES BUDGET_S
  INPUT.bin: float32 x [n,H,W,C] (NHWC, n = first line of CONFIG's "check_n"), t = CONFIG's "check_t"
  OUTPUT.bin: the network output for INPUT (NHWC float32), for the parity check
Prints one JSON line: {"torch": version, "threads": k, "ms_per_img": {batch: ms}}.
Run with OMP_WAIT_POLICY=PASSIVE; uses torch.set_num_threads(2) (or $TORCH_THREADS).
"""
import json
import math
import os
import struct
import sys
import time

import torch
import torch.nn.functional as F


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    base = 8 + n
    buf = bytearray(data)
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: dtype {info['dtype']} (expected F32)")
        b, e = info["data_offsets"]
        t = torch.frombuffer(buf, dtype=torch.float32, count=(e - b) // 4, offset=base + b)
        out[name] = t.reshape(info["shape"]).clone()
    return out


def same_pads(size, k, stride):
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    before = total // 2
    return before, total - before


class UNet(torch.nn.Module):
    def __init__(self, cfg, params):
        super().__init__()
        self.c = cfg
        self.p = params
        # conv kernels HWIO -> OIHW once
        self.w = {}
        for name, t in params.items():
            if t.dim() == 4:
                self.w[name] = t.permute(3, 2, 0, 1).contiguous()
        half = cfg["baseChannels"] // 2
        freqs = [math.exp(-math.log(10000) * i / max(half - 1, 1)) for i in range(half)]
        self.freqs = torch.tensor(freqs, dtype=torch.float32).reshape(1, half)

    def dense(self, x, name):
        return torch.addmm(self.p[name + ".bias"], x, self.p[name + ".kernel"])

    def conv(self, x, name, stride=1):
        w = self.w[name + ".kernel"]
        k = w.shape[2]
        if stride == 1:
            return F.conv2d(x, w, self.p[name + ".bias"], padding=(k - 1) // 2)
        pb, pa = same_pads(x.shape[2], k, stride)
        x = F.pad(x, (pb, pa, pb, pa))
        return F.conv2d(x, w, self.p[name + ".bias"], stride=stride)

    def gn(self, x, name):
        return F.group_norm(x, self.c["groups"], self.p[name + ".gamma"], self.p[name + ".beta"], 1e-5)

    def res(self, x, emb_act, name):
        h = self.conv(F.silu(self.gn(x, name + ".norm1")), name + ".conv1")
        h = h + self.dense(emb_act, name + ".temb")[:, :, None, None]
        h = self.conv(F.silu(self.gn(h, name + ".norm2")), name + ".conv2")
        skip = self.conv(x, name + ".skip") if (name + ".skip.kernel") in self.p else x
        return skip + h

    def attn(self, x, name):
        n, c, hh, ww = x.shape
        tok = self.gn(x, name + ".norm").reshape(n, c, hh * ww).transpose(1, 2)
        qkv = torch.matmul(tok, self.p[name + ".qkv.kernel"]) + self.p[name + ".qkv.bias"]
        q, k, v = qkv.split(c, dim=2)
        att = torch.softmax(torch.bmm(q, k.transpose(1, 2)) * (1.0 / math.sqrt(c)), dim=-1)
        o = torch.matmul(torch.bmm(att, v), self.p[name + ".proj.kernel"]) + self.p[name + ".proj.bias"]
        return x + o.transpose(1, 2).reshape(n, c, hh, ww)

    def forward(self, x_nhwc, t, classes=None):
        c = self.c
        args = t.reshape(-1, 1) * self.freqs
        emb = self.dense(torch.cat([torch.sin(args), torch.cos(args)], 1), "temb.dense0")
        emb = self.dense(F.silu(emb), "temb.dense1")
        if c["numClasses"] > 0:
            if classes is None:
                classes = torch.full((x_nhwc.shape[0],), c["numClasses"], dtype=torch.long)
            emb = emb + self.p["class_emb.table"][classes]
        emb_act = F.silu(emb)
        chans = [m * c["baseChannels"] for m in c["channelMults"]]
        resos = [c["imageSize"] // (2 ** i) for i in range(len(chans))]
        h = self.conv(x_nhwc.permute(0, 3, 1, 2), "conv_in")
        skips = [h]
        for l, lc in enumerate(chans):
            for i in range(c["numResBlocks"]):
                h = self.res(h, emb_act, f"down.{l}.res.{i}")
                if resos[l] in c["attentionResolutions"]:
                    h = self.attn(h, f"down.{l}.attn.{i}")
                skips.append(h)
            if l < len(chans) - 1:
                h = self.conv(h, f"down.{l}.downsample", 2)
                skips.append(h)
        h = self.res(h, emb_act, "mid.res.0")
        h = self.attn(h, "mid.attn.0")
        h = self.res(h, emb_act, "mid.res.1")
        for l in range(len(chans) - 1, -1, -1):
            for i in range(c["numResBlocks"] + 1):
                h = self.res(torch.cat([h, skips.pop()], 1), emb_act, f"up.{l}.res.{i}")
                if resos[l] in c["attentionResolutions"]:
                    h = self.attn(h, f"up.{l}.attn.{i}")
            if l > 0:
                h = self.conv(F.interpolate(h, scale_factor=2, mode="nearest"), f"up.{l}.upsample")
        h = self.conv(F.silu(self.gn(h, "out.norm")), "out.conv")
        return h.permute(0, 2, 3, 1).contiguous()


def main():
    wpath, cpath, xin, yout, batches, budget = sys.argv[1:7]
    threads = int(os.environ.get("TORCH_THREADS", "2"))
    torch.set_num_threads(threads)
    meta = json.load(open(cpath))
    cfg = meta["model"]
    net = UNet(cfg, read_safetensors(wpath))
    S, C = cfg["imageSize"], cfg["inChannels"]
    with torch.inference_mode():
        n = meta["check_n"]
        x = torch.frombuffer(bytearray(open(xin, "rb").read()), dtype=torch.float32).reshape(n, S, S, C)
        y = net(x, torch.full((n,), float(meta["check_t"]), dtype=torch.float32))
        with open(yout, "wb") as f:
            f.write(y.numpy().astype("<f4").tobytes())
        res = {}
        gen = torch.Generator().manual_seed(0)
        for b in [int(s) for s in batches.split(",")]:
            xb = torch.randn(b, S, S, C, generator=gen)
            tb = torch.full((b,), 500.0)
            for _ in range(3 if b == 1 else 1):
                net(xb, tb)
            times = []
            start = time.perf_counter()
            while len(times) < 3 or time.perf_counter() - start < float(budget):
                t0 = time.perf_counter()
                net(xb, tb)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            res[str(b)] = times[len(times) // 2] / b
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "ms_per_img": res}))


if __name__ == "__main__":
    main()
