"""A PyTorch reference of NVIDIA's StyleGAN (v1) generator (networks_stylegan.py semantics), written for this
project, and the writer of the non-standard test generator in tests/IdDisentangle.Tests/TestData/stylegan1-alt.

   python3 stylegan1_ref.py check OFFICIAL.pkl FIXTURE_DIR     # reproduces tests/fixtures/stylegan1
   python3 stylegan1_ref.py make-alt OUT_DIR                   # 256 px, other channels/mapping/style width

The alternative generator is written in both layouts users have: an NVIDIA-style pickle ((G, D, Gs) of
dnnlib.tflib.network.Network objects whose state holds numpy arrays; pickle protocol 3, unlike the fixture's 4)
and the TF2 port's Keras HDF5 weights (h5py; names such as G_synthesis/256x256/Conv0_up/weight:0)."""
import json, math, os, pickle, sys, types
import numpy as np
import torch
import torch.nn.functional as F


def lrelu(x):
    return F.leaky_relu(x, 0.2)


class G1:
    """Weights in the official names and TF layouts; computes mapping, truncation and synthesis like the TF code."""

    def __init__(self, v, resolution, fused_from=128, cutoff=8, dtype=torch.float32):
        self.v, self.res, self.log, self.dtype = v, resolution, int(math.log2(resolution)), dtype
        self.fused_from, self.cutoff = fused_from, cutoff
        self.n_map = len([k for k in v if k.startswith("mapping/Dense") and k.endswith("/weight")])
        self.n_lat = self.log * 2 - 2

    def t(self, k):
        return torch.from_numpy(np.asarray(self.v[k], dtype=np.float64)).to(self.dtype)

    def mapping(self, z):
        x = z * torch.rsqrt((z ** 2).mean(1, keepdim=True) + 1e-8)
        for i in range(self.n_map):
            w, b = self.t(f"mapping/Dense{i}/weight"), self.t(f"mapping/Dense{i}/bias")
            x = lrelu(x @ (w * (math.sqrt(2) / math.sqrt(w.shape[0]) * 0.01)) + b * 0.01)
        return x.unsqueeze(1).repeat(1, self.n_lat, 1)

    def truncate(self, dl, psi):
        avg = self.t("dlatent_avg")
        coefs = torch.tensor([psi if i < self.cutoff else 1.0 for i in range(self.n_lat)], dtype=self.dtype).view(1, -1, 1)
        return avg + (dl - avg) * coefs

    def conv_w(self, k):
        w = self.t(k)  # [kh,kw,in,out]
        return w * (math.sqrt(2) / math.sqrt(w.shape[0] * w.shape[1] * w.shape[2]))

    def epilogue(self, x, name, i, dl):
        x = x + self.t(f"synthesis/noise{i}") * self.t(f"synthesis/{name}/Noise/weight").view(1, -1, 1, 1)
        x = lrelu(x + self.t(f"synthesis/{name}/bias").view(1, -1, 1, 1))
        x = x - x.mean((2, 3), keepdim=True)
        x = x * torch.rsqrt((x ** 2).mean((2, 3), keepdim=True) + 1e-8)
        sw = self.t(f"synthesis/{name}/StyleMod/weight")
        s = dl[:, i] @ (sw / math.sqrt(sw.shape[0])) + self.t(f"synthesis/{name}/StyleMod/bias")
        s = s.view(-1, 2, x.shape[1], 1, 1)
        return x * (s[:, 0] + 1) + s[:, 1]

    @staticmethod
    def blur(x):
        k = torch.tensor([1.0, 2.0, 1.0], dtype=x.dtype)
        k = (k[:, None] * k[None, :] / 16).view(1, 1, 3, 3).repeat(x.shape[1], 1, 1, 1)
        return F.conv2d(x, k, padding=1, groups=x.shape[1])

    def synthesis(self, dl):
        x = self.t("synthesis/4x4/Const/const").repeat(dl.shape[0], 1, 1, 1)
        x = self.epilogue(x, "4x4/Const", 0, dl)
        x = F.conv2d(x, self.conv_w("synthesis/4x4/Conv/weight").permute(3, 2, 0, 1), padding=1)
        x = self.epilogue(x, "4x4/Conv", 1, dl)
        for r in range(3, self.log + 1):
            res = 2 ** r
            w = self.conv_w(f"synthesis/{res}x{res}/Conv0_up/weight")
            if res >= self.fused_from:
                # TF: transpose to [k,k,out,in], pad, sum the four shifts, conv2d_transpose stride 2 'SAME'.
                wt = F.pad(w.permute(3, 2, 0, 1), (1, 1, 1, 1))  # [out,in,5,5]
                wt = wt[:, :, 1:, 1:] + wt[:, :, :-1, 1:] + wt[:, :, 1:, :-1] + wt[:, :, :-1, :-1]
                x = F.conv_transpose2d(x, wt.permute(1, 0, 2, 3), stride=2, padding=1)
            else:
                x = F.conv2d(F.interpolate(x, scale_factor=2, mode="nearest"), w.permute(3, 2, 0, 1), padding=1)
            x = self.epilogue(self.blur(x), f"{res}x{res}/Conv0_up", r * 2 - 4, dl)
            x = F.conv2d(x, self.conv_w(f"synthesis/{res}x{res}/Conv1/weight").permute(3, 2, 0, 1), padding=1)
            x = self.epilogue(x, f"{res}x{res}/Conv1", r * 2 - 3, dl)
        w = self.t("synthesis/ToRGB_lod0/weight")
        return F.conv2d(x, (w / math.sqrt(w.shape[2])).permute(3, 2, 0, 1), self.t("synthesis/ToRGB_lod0/bias"))


# ---------------------------------------------------------------- NVIDIA's pickle layout

def _fake_dnnlib():
    for name in ["dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"]:
        sys.modules.setdefault(name, types.ModuleType(name))
    mod = sys.modules["dnnlib.tflib.network"]
    if not hasattr(mod, "Network"):
        class Network:
            def __init__(self, state=None):
                self.state = state or {}

            def __getstate__(self):
                return self.state

            def __setstate__(self, s):
                self.state = s
        Network.__module__ = "dnnlib.tflib.network"
        Network.__qualname__ = "Network"
        mod.Network = Network
    return mod.Network


def read_official(path):
    Network = _fake_dnnlib()
    with open(path, "rb") as f:
        _, _, gs = pickle.load(f)
    v = {k: a for k, a in gs.state["variables"]}
    for cname, comp in gs.state["components"].items():
        for k, a in comp.state["variables"]:
            v[f"{cname}/{k}"] = a
    return v, gs.state["static_kwargs"]["resolution"]


def write_official(path, v, static):
    Network = _fake_dnnlib()
    comp = lambda prefix, name: Network(dict(version=4, name=name, static_kwargs=static, components={}, build_module_src="# never executed",
                                             build_func_name=f"training.networks_stylegan.{name}",
                                             variables=[(k[len(prefix):], a) for k, a in v.items() if k.startswith(prefix)]))
    mapping, synthesis = comp("mapping/", "G_mapping"), comp("synthesis/", "G_synthesis")
    gs = Network(dict(version=4, name="G", static_kwargs=static, build_module_src="# never executed", build_func_name="training.networks_stylegan.G_style",
                      components={"mapping": mapping, "synthesis": synthesis}, variables=[("dlatent_avg", v["dlatent_avg"])]))
    empty = Network(dict(version=4, name="D", static_kwargs={}, components={}, build_module_src="", build_func_name="", variables=[]))
    with open(path, "wb") as f:
        pickle.dump((empty, empty, gs), f, protocol=3)


def write_keras(path, v, res, fused_from):
    import h5py
    with h5py.File(path, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.2.4-tf"
        f.attrs["layer_names"] = np.array([b"G_mapping", b"G_synthesis"])  # fixed-length bytes, as Keras writes them
        for layer, prefix in [("G_mapping", "mapping/"), ("G_synthesis", "synthesis/")]:
            g = f.create_group(layer)
            names = []
            for k, a in v.items():
                if k == "dlatent_avg" and layer == "G_mapping":
                    n = "Truncation/dlatent_avg:0"
                elif not k.startswith(prefix) or k.endswith("lod") or "ToRGB_lod" in k and "lod0" not in k:
                    continue
                else:
                    n = k[len(prefix):]
                    fused = any(n.startswith(f"{r}x{r}/Conv0_up/weight") for r in [2 ** i for i in range(int(math.log2(fused_from)), 11)])
                    n = n.replace("/StyleMod/weight", "/StyleMod/kernel").replace("Dense", "Dense")
                    if n.endswith("/bias") and ("/Conv" in n or "/Const" in n) and "StyleMod" not in n:
                        n = n[:-len("bias")] + "bias/bias"
                    if n.endswith("/weight") and "Noise" not in n and not fused:
                        n = n[:-len("weight")] + "kernel"
                    if n.startswith("noise"):
                        n = n + "/noise"
                    n = f"{layer}/{n}:0"
                names.append(n)
                g.create_dataset(n, data=np.asarray(a, dtype=np.float32))
            g.attrs["weight_names"] = np.array([n.encode() for n in names])


def make_alt(out):
    """256 px, fmap_base 512 / fmap_max 32 (channels 32 .. 2), 2 mapping layers of 96, style width 64."""
    rng = np.random.RandomState(11)
    res, style, fmaps, n_map = 256, 64, 96, 2
    nf = lambda stage: min(512 // 2 ** stage, 32)
    v = {}
    for i in range(n_map):
        fin, fout = (style if i == 0 else fmaps), (style if i == n_map - 1 else fmaps)
        v[f"mapping/Dense{i}/weight"] = rng.randn(fin, fout).astype(np.float32) * 100  # lrmul 0.01 init scale
        v[f"mapping/Dense{i}/bias"] = rng.randn(fout).astype(np.float32)
    v["dlatent_avg"] = rng.randn(style).astype(np.float32) * 0.3
    v["synthesis/lod"] = np.float32(0)
    log = int(math.log2(res))
    for i in range(log * 2 - 2):
        r = 2 ** (i // 2 + 2)
        v[f"synthesis/noise{i}"] = rng.randn(1, 1, r, r).astype(np.float32)

    def layer(name, cin, cout, conv=True):
        if conv:
            v[f"synthesis/{name}/weight"] = rng.randn(3, 3, cin, cout).astype(np.float32)
        v[f"synthesis/{name}/Noise/weight"] = rng.randn(cout).astype(np.float32) * 0.3
        v[f"synthesis/{name}/bias"] = rng.randn(cout).astype(np.float32) * 0.2
        v[f"synthesis/{name}/StyleMod/weight"] = rng.randn(style, 2 * cout).astype(np.float32)
        v[f"synthesis/{name}/StyleMod/bias"] = rng.randn(2 * cout).astype(np.float32) * 0.2

    c4 = nf(1)
    v["synthesis/4x4/Const/const"] = rng.randn(1, c4, 4, 4).astype(np.float32)
    layer("4x4/Const", 0, c4, conv=False)
    layer("4x4/Conv", c4, c4)
    cin = c4
    for r in range(3, log + 1):
        cout = nf(r - 1)
        layer(f"{2 ** r}x{2 ** r}/Conv0_up", cin, cout)
        layer(f"{2 ** r}x{2 ** r}/Conv1", cout, cout)
        cin = cout
    v["synthesis/ToRGB_lod0/weight"] = rng.randn(1, 1, cin, 3).astype(np.float32) * 0.15  # images in about [-1, 1]
    v["synthesis/ToRGB_lod0/bias"] = rng.randn(3).astype(np.float32) * 0.1
    v["synthesis/ToRGB_lod1/weight"] = rng.randn(1, 1, 2 * cin, 3).astype(np.float32)  # a progressive-growing leftover
    v["synthesis/ToRGB_lod1/bias"] = rng.randn(3).astype(np.float32)

    os.makedirs(out, exist_ok=True)
    static = dict(resolution=res, fmap_base=512, fmap_max=32, mapping_layers=n_map, mapping_fmaps=fmaps, dlatent_size=style, latent_size=style)
    write_official(os.path.join(out, "alt_official.pkl"), v, static)
    write_keras(os.path.join(out, "alt_tf2_keras.h5"), v, res, 128)
    # Computed in float64: the gradient of a StyleGAN in float32 carries rounding error of ~1e-3 of its maximum.
    g = G1(v, res, dtype=torch.float64)
    torch.manual_seed(5)
    z = torch.randn(2, style, dtype=torch.float64)
    with torch.no_grad():
        dl = g.mapping(z)
        trunc = g.truncate(dl, 0.7)
        img = g.synthesis(trunc)
    wplus = trunc + 0.1 * torch.randn_like(trunc)
    wplus.requires_grad_()
    probe = torch.randn(2, 3, res, res, dtype=torch.float64)
    img_w = g.synthesis(wplus)
    (img_w * probe).sum().backward()
    for name, t in [("z", z), ("dlatents_trunc", trunc), ("img_trunc", img), ("wplus", wplus.detach()), ("img_wplus", img_w.detach()),
                    ("probe", probe), ("grad_wplus", wplus.grad)]:
        np.save(os.path.join(out, f"{name}.npy"), t.detach().numpy().astype(np.float32))
    print(json.dumps(dict(out=out, resolution=res, style=style, img_range=[float(img.min()), float(img.max())])))


def check(pkl, fx):
    v, res = read_official(pkl)
    g = G1(v, res)
    z = torch.from_numpy(np.load(os.path.join(fx, "z.npy")))
    with torch.no_grad():
        dl = g.mapping(z)
        tr = g.truncate(dl, 0.7)
        d = dict(dlatents=(dl - torch.from_numpy(np.load(os.path.join(fx, "dlatents.npy")))).abs().max().item(),
                 dlatents_trunc=(tr - torch.from_numpy(np.load(os.path.join(fx, "dlatents_trunc.npy")))).abs().max().item(),
                 img_trunc=(g.synthesis(tr) - torch.from_numpy(np.load(os.path.join(fx, "img_trunc.npy")))).abs().max().item(),
                 img_wplus=(g.synthesis(torch.from_numpy(np.load(os.path.join(fx, "wplus.npy")))) -
                            torch.from_numpy(np.load(os.path.join(fx, "img_wplus.npy")))).abs().max().item())
    print(json.dumps(d))


if __name__ == "__main__":
    if sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "make-alt":
        make_alt(sys.argv[2])
