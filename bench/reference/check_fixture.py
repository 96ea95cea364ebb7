"""Checks that stylegan2_ref.py reproduces the StyleGAN2 fixture in tests/fixtures/stylegan2 (so it is a faithful reference)."""
import os, sys, numpy as np, torch
sys.path.insert(0, __file__.rsplit("/", 1)[0])
from stylegan2_ref import Generator, channels_for

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "stylegan2")
ck = torch.load(f"{root}/generator.pt", map_location="cpu")
g = Generator(64, 512, 4, channels_for(64, 2, 8))
g.load_state_dict(ck["g_ema"])
z = torch.from_numpy(np.load(f"{root}/z.npy"))
with torch.no_grad():
    w = g.style(z)
    print("w", (w - torch.from_numpy(np.load(f"{root}/w.npy"))).abs().max().item())
    print("img_z", (g(w) - torch.from_numpy(np.load(f"{root}/img_z.npy"))).abs().max().item())
    wp = torch.from_numpy(np.load(f"{root}/wplus.npy"))
    print("img_wplus", (g(wp) - torch.from_numpy(np.load(f"{root}/img_wplus.npy"))).abs().max().item())
