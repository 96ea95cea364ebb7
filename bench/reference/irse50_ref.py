"""A compact PyTorch IR-SE50 (InsightFace ArcFace backbone, the layout of model_ir_se50.pth), written from the
architecture description, for parity tests: builds it with random weights (seeded), saves the state dict and the
embeddings of a random batch.  python3 irse50_ref.py OUT_DIR"""
import sys, numpy as np, torch
from torch import nn


class SE(nn.Module):
    def __init__(self, c, r):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1, bias=False)
        self.fc2 = nn.Conv2d(c // r, c, 1, bias=False)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean([2, 3], keepdim=True)))))


class Unit(nn.Module):
    def __init__(self, cin, depth, stride):
        super().__init__()
        self.shortcut_layer = nn.MaxPool2d(1, stride) if cin == depth else nn.Sequential(nn.Conv2d(cin, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(nn.BatchNorm2d(cin), nn.Conv2d(cin, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
                                       nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth), SE(depth, 16))

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSE50(nn.Module):
    def __init__(self):
        super().__init__()
        self.input_layer = nn.Sequential(nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64))
        units = []
        for cin, depth, n in [(64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3)]:
            units.append(Unit(cin, depth, 2))
            units += [Unit(depth, depth, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)
        self.output_layer = nn.Sequential(nn.BatchNorm2d(512), nn.Dropout(0.4), nn.Flatten(), nn.Linear(512 * 7 * 7, 512), nn.BatchNorm1d(512))

    def forward(self, x):
        return nn.functional.normalize(self.output_layer(self.body(self.input_layer(x))), dim=1)


if __name__ == "__main__":
    out = sys.argv[1]
    torch.manual_seed(3)
    net = IRSE50()
    with torch.no_grad():
        for name, b in net.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
        for name, p in net.named_parameters():
            if p.dim() == 1 and "res_layer.2" not in name and "input_layer.2" not in name:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.1)
    net.eval()
    torch.save(net.state_dict(), f"{out}/model_ir_se50.pth")
    x = torch.rand(2, 3, 112, 112) * 2 - 1
    with torch.no_grad():
        y = net(x)
    np.save(f"{out}/x.npy", x.numpy())
    np.save(f"{out}/y.npy", y.numpy())
