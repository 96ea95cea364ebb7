"""PyTorch-eager reference of IdDisentangle's inference pipeline and training step, for the benchmarks.
Written for this project (architectures from the face-api.js sources, torchvision's InceptionV3 and the paper);
the face-api nets and InceptionV3 load IdDisentangle's converted weight files (safetensors in the model store),
so both sides compute the same functions.

   python3 pipeline_ref.py check      # face-api nets against the face-api.js fixtures (tests/fixtures/faceapi)
   (bench_reference.py calls inference_pair / train_step)
"""
import json, math, os, struct, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from stylegan2_ref import Generator


# ---------------------------------------------------------------- weights

def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    dtypes = {"F32": np.float32, "I64": np.int64, "F64": np.float64, "I32": np.int32}
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        out[k] = torch.from_numpy(np.frombuffer(data[a:b], dtype=dtypes[v["dtype"]]).reshape(v["shape"]).copy())
    return out


def model_store():
    env = os.environ.get("IDDIS_MODELS_DIR")
    if env:
        return env
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(cache, "iddisentangle", "models")


# ---------------------------------------------------------------- TensorFlow 'SAME' padding

def pad_same(x, k, s):
    def pads(n):
        out = (n + s - 1) // s
        total = max((out - 1) * s + k - n, 0)
        return total // 2, total - total // 2
    t, b = pads(x.shape[2])
    l, r = pads(x.shape[3])
    return F.pad(x, (l, r, t, b)) if (t or b or l or r) else x


def conv_same(x, w, b, s, groups=1):
    return F.conv2d(pad_same(x, w.shape[2], s), w, b, stride=s, groups=groups)


# ---------------------------------------------------------------- face-api.js recognition net

# float32 constants, as face-api.js (TensorFlow.js) holds them; converted to the input dtype when used.
MEAN_RGB = torch.tensor([122.782, 117.001, 104.298], dtype=torch.float32).view(1, 3, 1, 1)


class ConvScale(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = nn.Parameter(torch.ones(cout))
        self.shift = nn.Parameter(torch.zeros(cout))

    def forward(self, x, stride, same):
        y = conv_same(x, self.weight, self.bias, stride) if same else F.conv2d(x, self.weight, self.bias, stride=stride)
        return y * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1)


class Residual(nn.Module):
    def __init__(self, cin, cout, down):
        super().__init__()
        self.conv1, self.conv2, self.down, self.cout = ConvScale(cin, cout, 3), ConvScale(cout, cout, 3), down, cout

    def forward(self, x):
        y = F.relu(self.conv1(x, 2, False) if self.down else self.conv1(x, 1, True))
        y = self.conv2(y, 1, True)
        if not self.down:
            return F.relu(y + x)
        p = F.avg_pool2d(x, 2, 2)
        dh, dw = p.shape[2] - y.shape[2], p.shape[3] - y.shape[3]
        if dh > 0 or dw > 0:
            y = F.pad(y, (0, dw, 0, dh))
        if p.shape[1] != self.cout:
            p = F.pad(p, (0, 0, 0, 0, 0, self.cout - p.shape[1]))
        return F.relu(y + p)


BLOCKS = [("conv32_1", 32, 32, False), ("conv32_2", 32, 32, False), ("conv32_3", 32, 32, False),
          ("conv64_down", 32, 64, True), ("conv64_1", 64, 64, False), ("conv64_2", 64, 64, False), ("conv64_3", 64, 64, False),
          ("conv128_down", 64, 128, True), ("conv128_1", 128, 128, False), ("conv128_2", 128, 128, False),
          ("conv256_down", 128, 256, True), ("conv256_1", 256, 256, False), ("conv256_2", 256, 256, False),
          ("conv256_down_out", 256, 256, True)]


class FaceRecognitionNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv32_down = ConvScale(3, 32, 7)
        self.blocks = nn.ModuleDict({n: Residual(i, o, d) for n, i, o, d in BLOCKS})
        self.fc = nn.Parameter(torch.zeros(256, 128))

    def forward(self, rgb255):
        x = (rgb255 - MEAN_RGB.to(rgb255.dtype)) / 255.0
        x = F.max_pool2d(F.relu(self.conv32_down(x, 2, False)), 3, 2)
        for n, *_ in BLOCKS:
            x = self.blocks[n](x)
        return x.mean((2, 3)) @ self.fc


# ---------------------------------------------------------------- face-api.js 68-point landmark net

class SepConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.depthwise = nn.Parameter(torch.zeros(cin, 1, 3, 3))
        self.pointwise = nn.Parameter(torch.zeros(cout, cin, 1, 1))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x, s):
        return F.conv2d(conv_same(x, self.depthwise, None, s, groups=x.shape[1]), self.pointwise, self.bias)


class PlainConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(cout, cin, 3, 3))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x, s):
        return conv_same(x, self.weight, self.bias, s)


class DenseBlock(nn.Module):
    def __init__(self, cin, cout, first=False):
        super().__init__()
        self.conv0 = PlainConv(cin, cout) if first else SepConv(cin, cout)
        self.conv1, self.conv2, self.conv3 = SepConv(cout, cout), SepConv(cout, cout), SepConv(cout, cout)

    def forward(self, x):
        o1 = F.relu(self.conv0(x, 2))
        o2 = self.conv1(o1, 1)
        o3 = self.conv2(F.relu(o1 + o2), 1)
        o4 = self.conv3(F.relu(o1 + o2 + o3), 1)
        return F.relu(o1 + o2 + o3 + o4)


class FaceLandmark68Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense = nn.ModuleList([DenseBlock(3, 32, True), DenseBlock(32, 64), DenseBlock(64, 128), DenseBlock(128, 256)])
        self.fc_weight = nn.Parameter(torch.zeros(256, 136))
        self.fc_bias = nn.Parameter(torch.zeros(136))

    def forward(self, rgb255):
        x = (rgb255 - MEAN_RGB.to(rgb255.dtype)) / 255.0
        for b in self.dense:
            x = b(x)
        x = F.avg_pool2d(x, 7, 2)
        return (x.flatten(1) @ self.fc_weight + self.fc_bias).view(-1, 68, 2) * 112


# ---------------------------------------------------------------- InceptionV3 (torchvision layout, Keras pools)

class BasicConv(nn.Module):
    def __init__(self, cin, cout, k, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def pool3(x):
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin, pf):
        super().__init__()
        self.branch1x1 = BasicConv(cin, 64, 1)
        self.branch5x5_1, self.branch5x5_2 = BasicConv(cin, 48, 1), BasicConv(48, 64, 5, padding=2)
        self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3 = BasicConv(cin, 64, 1), BasicConv(64, 96, 3, padding=1), BasicConv(96, 96, 3, padding=1)
        self.branch_pool = BasicConv(cin, pf, 1)

    def forward(self, x):
        return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                          self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))), self.branch_pool(pool3(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3 = BasicConv(cin, 384, 3, stride=2)
        self.branch3x3dbl_1, self.branch3x3dbl_2, self.branch3x3dbl_3 = BasicConv(cin, 64, 1), BasicConv(64, 96, 3, padding=1), BasicConv(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3(x), self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))), F.max_pool2d(x, 3, 2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin, c7):
        super().__init__()
        self.branch1x1 = BasicConv(cin, 192, 1)
        self.branch7x7_1, self.branch7x7_2, self.branch7x7_3 = BasicConv(cin, c7, 1), BasicConv(c7, c7, (1, 7), padding=(0, 3)), BasicConv(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv(cin, c7, 1)
        self.branch7x7dbl_2, self.branch7x7dbl_3 = BasicConv(c7, c7, (7, 1), padding=(3, 0)), BasicConv(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4, self.branch7x7dbl_5 = BasicConv(c7, c7, (7, 1), padding=(3, 0)), BasicConv(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv(cin, 192, 1)

    def forward(self, x):
        d = self.branch7x7dbl_5(self.branch7x7dbl_4(self.branch7x7dbl_3(self.branch7x7dbl_2(self.branch7x7dbl_1(x)))))
        return torch.cat([self.branch1x1(x), self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))), d, self.branch_pool(pool3(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch3x3_1, self.branch3x3_2 = BasicConv(cin, 192, 1), BasicConv(192, 320, 3, stride=2)
        self.branch7x7x3_1, self.branch7x7x3_2 = BasicConv(cin, 192, 1), BasicConv(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3, self.branch7x7x3_4 = BasicConv(192, 192, (7, 1), padding=(3, 0)), BasicConv(192, 192, 3, stride=2)

    def forward(self, x):
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)),
                          self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x)))), F.max_pool2d(x, 3, 2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin):
        super().__init__()
        self.branch1x1 = BasicConv(cin, 320, 1)
        self.branch3x3_1 = BasicConv(cin, 384, 1)
        self.branch3x3_2a, self.branch3x3_2b = BasicConv(384, 384, (1, 3), padding=(0, 1)), BasicConv(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1, self.branch3x3dbl_2 = BasicConv(cin, 448, 1), BasicConv(448, 384, 3, padding=1)
        self.branch3x3dbl_3a, self.branch3x3dbl_3b = BasicConv(384, 384, (1, 3), padding=(0, 1)), BasicConv(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv(cin, 192, 1)

    def forward(self, x):
        a = self.branch3x3_1(x)
        b = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([self.branch1x1(x), self.branch3x3_2a(a), self.branch3x3_2b(a),
                          self.branch3x3dbl_3a(b), self.branch3x3dbl_3b(b), self.branch_pool(pool3(x))], 1)


class InceptionV3(nn.Module):
    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3, self.Conv2d_2a_3x3 = BasicConv(3, 32, 3, stride=2), BasicConv(32, 32, 3)
        self.Conv2d_2b_3x3, self.Conv2d_3b_1x1, self.Conv2d_4a_3x3 = BasicConv(32, 64, 3, padding=1), BasicConv(64, 80, 1), BasicConv(80, 192, 3)
        self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = InceptionA(192, 32), InceptionA(256, 64), InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e = InceptionC(768, 128), InceptionC(768, 160), InceptionC(768, 160), InceptionC(768, 192)
        self.Mixed_7a, self.Mixed_7b, self.Mixed_7c = InceptionD(768), InceptionE(1280), InceptionE(2048)

    def forward(self, x):
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, 2)))
        x = F.max_pool2d(x, 3, 2)
        for m in [self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e,
                  self.Mixed_7a, self.Mixed_7b, self.Mixed_7c]:
            x = m(x)
        return x.mean((2, 3))


# ---------------------------------------------------------------- the paper's mapper and W discriminator

def mlp(sizes):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- preprocessing (as IdDisentangle's Prepare)

FACE_CROP = (42, 70, 210, 238)  # FaceCrop.FfhqFaceApi at 256


def crop_resize(x01, size, crop=FACE_CROP):
    s = x01.shape[-1] / 256.0
    x0, y0, x1, y1 = [int(round(v * s)) for v in crop]
    x = x01[:, :, y0:y1, x0:x1]
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
    return x


def inception_prepare(x01, size=299):
    return F.interpolate(x01, size=(size, size), mode="bilinear", align_corners=False) * 2 - 1


# ---------------------------------------------------------------- losses (as IdDisentangle's Losses)

MS_W = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333]


def ms_ssim(a, b):
    c = a.shape[1]
    g = (torch.arange(11, dtype=torch.float64) - 5) ** 2 * (-0.5 / 1.5 ** 2)
    win = torch.softmax((g.view(1, -1) + g.view(-1, 1)).flatten(), 0).view(1, 1, 11, 11).to(a.dtype).expand(c, 1, 11, 11)
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    terms, x, y = [], a, b
    for s in range(5):
        if s > 0:
            x, y = [F.avg_pool2d(F.pad(t, (0, t.shape[3] % 2, 0, t.shape[2] % 2), mode="replicate"), 2, 2) for t in (x, y)]
        f = lambda t: F.conv2d(t, win, groups=c)
        mx, my = f(x), f(y)
        n0, d0 = mx * my * 2, mx ** 2 + my ** 2
        lum = (n0 + c1) / (d0 + c1)
        cs = (f(x * y) * 2 - n0 + c2) / (f(x * x + y * y) - d0 + c2)
        ssim = (lum * cs).mean((2, 3))
        if s < 4:
            terms.append(F.relu(cs.mean((2, 3))) ** MS_W[s])
    terms.append(F.relu(ssim) ** MS_W[4])
    p = terms[0]
    for t in terms[1:]:
        p = p * t
    return p.mean(1)


# ---------------------------------------------------------------- the pipeline

class Pipeline:
    """E_id (face-api recognition), E_attr (InceptionV3 at 299), M, D_W, landmarks, StyleGAN2 (standard, random weights)."""

    def __init__(self, size=256, weights=True):
        torch.manual_seed(0)
        self.g = Generator(size).eval()
        for p in self.g.parameters():
            p.requires_grad_(False)
        self.e_id, self.lnd, self.e_attr = FaceRecognitionNet().eval(), FaceLandmark68Net().eval(), InceptionV3()
        if weights:
            store = model_store()
            for net, f in [(self.e_id, "face-api/face_recognition.safetensors"), (self.lnd, "face-api/face_landmark_68.safetensors"),
                           (self.e_attr, "nsfwjs/inception_v3.safetensors")]:
                net.load_state_dict(load_safetensors(os.path.join(store, f)), strict=True)
        for net in (self.e_id, self.lnd):
            for p in net.parameters():
                p.requires_grad_(False)
        self.m = mlp([128 + 2048, 2048, 1024, 512, 512])
        self.size, self.official = size, None

    def identity(self, x01):
        return self.e_id(crop_resize(x01, 150) * 255)

    def landmarks(self, x01):
        return self.lnd(crop_resize(x01, 112) * 255)

    @torch.no_grad()
    def swap(self, id01, attr01):
        self.e_attr.eval()
        self.m.eval()
        w = self.m(torch.cat([self.identity(id01), self.e_attr(inception_prepare(attr01))], 1))
        return (self.g(w) + 1) / 2

    def train_step(self, n, id01, attr01, real_w):
        """The official train step: official_step.py's transcription of trainer.py, on this pipeline's networks
        (its own mapper and D_W modules, Keras-style Adams), so the benchmark compares like with like."""
        if self.official is None:
            from official_step import AttrEncoder, IDEncoder, LandmarksDetector, LatentMappingNetwork, Trainer, W_D
            cfg = dict(learning_rate=5e-5, resolution=self.size, unified=False, cross_frequency=3, w_d_loss=True, gp=True,
                       id_loss=True, landmarks_loss=True, pixel_loss=True, pixel_loss_type="mix")
            self.official = Trainer(cfg, IDEncoder(self.e_id), LandmarksDetector(self.lnd), AttrEncoder(self.e_attr, 299),
                                    LatentMappingNetwork([128 + 2048, 2048, 1024, 512, 512]), W_D(512), self.g)
            for layer in list(self.official.mapping.layers) + list(self.official.w_d.layers):
                nn.init.kaiming_uniform_(layer.weight, a=0.2)
        return self.official.train_epoch(n, attr01, id01, real_w)["l_total"]


def check():
    """The face-api nets of this file on the face-api.js fixtures in tests/fixtures/faceapi (independent of IdDisentangle's C#)."""
    fx = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "fixtures", "faceapi")
    p = Pipeline(weights=True)
    with torch.no_grad():
        x = torch.from_numpy(np.load(os.path.join(fx, "recognition_input_150.npy"))).permute(0, 3, 1, 2).float()
        d = (p.e_id(x) - torch.from_numpy(np.load(os.path.join(fx, "recognition_descriptor_128.npy")))).abs().max().item()
        x = torch.from_numpy(np.load(os.path.join(fx, "landmark_input_112.npy"))).permute(0, 3, 1, 2).float()
        l = (p.lnd(x) - torch.from_numpy(np.load(os.path.join(fx, "landmarks_68_in_112px.npy")))).abs().max().item()
    print(json.dumps(dict(recognition_max_abs_diff=d, landmarks_max_abs_diff_px=l)))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "check":
        check()
