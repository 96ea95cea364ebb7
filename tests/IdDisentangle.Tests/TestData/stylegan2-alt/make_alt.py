"""A StyleGAN2 generator of a non-standard configuration (32 px, style_dim 64, 2 mapping layers, channels
48/40/24/16), with random weights including biases and noise strengths, saved by PyTorch in the LEGACY
(pre-1.6, non-zip) format as a BARE state dict without latent_avg, and its outputs from bench/reference/stylegan2_ref.py
(which reproduces the shared fixture to 2e-5). Run from this folder: /usr/bin/python3 make_alt.py"""
import sys, numpy as np, torch
sys.path.insert(0, "../../../../bench/reference")
from stylegan2_ref import Generator

torch.manual_seed(7)
g = Generator(32, style_dim=64, n_mlp=2, channels={4: 48, 8: 40, 16: 24, 32: 16})
with torch.no_grad():
    for name, p in g.named_parameters():
        if name.endswith("bias") or name.endswith("noise.weight"):
            p.copy_(torch.randn_like(p) * 0.3 + (1.0 if "modulation.bias" in name else 0.0))
torch.save(g.state_dict(), "generator_legacy.pt", _use_new_zipfile_serialization=False)

z = torch.randn(3, 64)
wplus = torch.randn(3, g.n_latent, 64) * 0.5
probe = torch.randn(3, 3, 32, 32)
with torch.no_grad():
    w = g.style(z)
    img = g(w)
wp = wplus.clone().requires_grad_()
img_wplus = g(wp)
(img_wplus * probe).sum().backward()
for name, arr in dict(z=z, w=w, img=img, wplus=wplus, img_wplus=img_wplus.detach(), probe=probe, grad_wplus=wp.grad).items():
    np.save(f"{name}.npy", arr.numpy().astype(np.float32))
print("n_latent", g.n_latent, "grad max", wp.grad.abs().max().item())
