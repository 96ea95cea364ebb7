"""The official train step, transcribed to PyTorch.

A line-by-line transcription of trainer.py's Trainer.train_epoch and its loss functions from the paper's official
code (GitHub YotamNitzan/ID-disentanglement, TensorFlow 2, commit 342a782; "trainer.py:N" below is that file's line
N), written from the official code and independent of IdDisentangle's C#. It is the reference the C# Trainer's steps
are held to (tests/IdDisentangle.Tests/OfficialStepTests.cs) and the objective of the PyTorch side of the training
benchmark (pipeline_ref.py).

Where the official weights cannot be had, the networks are the ones IdDisentangle uses instead (see docs/fidelity.md):
face-api.js's recognition net for E_id and its 68-point net for the landmarks (in pipeline_ref.py's own PyTorch
implementations, which reproduce face-api.js itself), the nsfwjs Keras InceptionV3 for E_attr, and the given
generator (rosinality's layout, stylegan2_ref.py). Everything else is the official semantics.

    python3 official_step.py DIR

DIR holds what the C# test wrote: config.json, generator.pt, init/{e_attr,mapper,w_discriminator}.safetensors and
step_N/{id,attr,real_w}.npy with step_N/meta.json. Writes DIR/reference/step_N/losses.json and the weights after the
step's updates in the C# key names. Runs in float64 when config.json says so.
"""
import json
import math
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipeline_ref import FaceRecognitionNet, FaceLandmark68Net, InceptionV3, load_safetensors, ms_ssim  # noqa: E402
from stylegan2_ref import Generator  # noqa: E402


# ---------------------------------------------------------------- utils/general_utils.py

def gaussian_image(size, sigma, dtype=np.float32):
    """general_utils.gaussian_image: a product of 1-D Gaussians, normalised to sum 1. The official grid is np.float32;
    float64 here (for the float64 parity run) changes only the rounding of the values."""
    grid = np.meshgrid(np.arange(size, dtype=dtype), np.arange(size, dtype=dtype))
    kernel = 1
    for mgrid in grid:
        mean = (size - 1) / 2
        kernel = kernel * 1 / (sigma * np.sqrt(2 * np.pi)) * np.exp(-((mgrid - mean) / sigma) ** 2 / 2)
    return kernel / np.sum(kernel)


def inverse_gaussian_image(size, sigma, dtype=np.float32):
    """general_utils.inverse_gaussian_image: max + min - g, normalised to sum 1."""
    gauss = gaussian_image(size, sigma, dtype)
    inv = np.max(gauss) + np.min(gauss) - gauss
    return inv / np.sum(inv)


class KerasAdam:
    """tf.keras.optimizers.Adam (TF 2, defaults beta_1 0.9, beta_2 0.999, epsilon 1e-7) as ResourceApplyAdam
    computes it: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t); m, v uncorrected; var -= lr_t m / (sqrt(v) + eps)."""

    def __init__(self, params, lr, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.b1, self.b2, self.eps = lr, beta_1, beta_2, epsilon
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.iterations = 0

    @torch.no_grad()
    def apply_gradients(self, grads):
        self.iterations += 1
        t = self.iterations
        lr_t = self.lr * math.sqrt(1 - self.b2 ** t) / (1 - self.b1 ** t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            if g is None:
                continue
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            p.sub_(lr_t * m / (v.sqrt() + self.eps))


# ---------------------------------------------------------------- model/*.py with IdDisentangle's forced networks

FACE_API_CROP = (42, 70, 210, 238)  # FaceCrop.FfhqFaceApi at 256 (forced: face-api nets instead of VGGFace2/610265158)


def face_api_input(x01, size):
    s = x01.shape[-1] / 256.0
    x0, y0, x1, y1 = [int(round(v * s)) for v in FACE_API_CROP]
    x = x01[:, :, y0:y1, x0:x1]
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=x.shape[-1] > size)
    return x * 255


class IDEncoder(nn.Module):
    """model/id_encoder.py: the frozen recognition net; call() ends with tf.math.l2_normalize(embedding, -1)."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x01):
        return F.normalize(self.net(face_api_input(x01, 150)), dim=-1)


class LandmarksDetector(nn.Module):
    """model/landmarks.py: call() returns batch_lnds[:, 17:, :], the jaw dropped."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x01):
        return self.net(face_api_input(x01, 112))[:, 17:, :]


class AttrEncoder(nn.Module):
    """model/attr_encoder.py: tf.image.resize(x, (299, 299)) (bilinear), preprocess_input(255 x) = x * 2 - 1, the
    backbone called without training=True (Keras BatchNormalization in inference mode)."""

    def __init__(self, backbone, size):
        super().__init__()
        self.backbone, self.size = backbone, size

    def forward(self, x01):
        x = x01
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > self.size)
        return self.backbone(x * 2 - 1)


class Dense(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(o, i))
        self.bias = nn.Parameter(torch.zeros(o))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class LatentMappingNetwork(nn.Module):
    """model/latent_mapping.py: Dense 2048, 1024, 512, 512, LeakyReLU(0.2) before every layer but the first."""

    def __init__(self, widths):
        super().__init__()
        self.layers = nn.ModuleList([Dense(widths[i], widths[i + 1]) for i in range(len(widths) - 1)])

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            if i > 0:
                x = F.leaky_relu(x, 0.2)
            x = layer(x)
        return x


class W_D(nn.Module):
    """model/discriminator.py: Dense 256, 128, 64, 1 with LeakyReLU(0.2) between."""

    def __init__(self, style_dim):
        super().__init__()
        widths = [style_dim, 256, 128, 64, 1]
        self.layers = nn.ModuleList([Dense(widths[i], widths[i + 1]) for i in range(4)])

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < 3:
                x = F.leaky_relu(x, 0.2)
        return x


# ---------------------------------------------------------------- trainer.py

def id_loss_func(y_gt, y_pred):
    """trainer.py:10-11: tf.reduce_mean(tf.keras.losses.MAE(y_gt, y_pred))."""
    return (y_gt - y_pred).abs().mean(-1).mean()


def bce_with_logits(labels, logits):
    """tf.keras.losses.BinaryCrossentropy(from_logits=True) (trainer.py:32): mean over the last axis, then the batch."""
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(-1).mean()


class Trainer:
    def __init__(self, cfg, e_id, landmarks, attr_encoder, mapping, w_d, generator):
        self.cfg = cfg
        self.e_id, self.landmarks, self.attr_encoder = e_id, landmarks, attr_encoder
        self.mapping, self.w_d, self.stylegan_s = mapping, w_d, generator
        lr = cfg["learning_rate"]                                                   # trainer.py:23
        g_vars = self.g_trainable_variables()
        self.g_optimizer = KerasAdam(g_vars, lr)                                    # trainer.py:25
        self.g_gan_optimizer = KerasAdam(g_vars, 0.1 * lr)                          # trainer.py:26
        self.w_d_optimizer = KerasAdam(list(self.w_d.parameters()), 0.4 * lr)      # trainer.py:27
        res = cfg["resolution"]
        sigma = int(80 * (res / 256))                                               # trainer.py:38
        grid = np.float64 if torch.get_default_dtype() == torch.float64 else np.float32
        mask = inverse_gaussian_image(res, sigma, grid)                             # trainer.py:39
        self.pixel_mask = torch.from_numpy(mask).to(torch.get_default_dtype())      # trainer.py:44 (broadcast below)
        self.lambda_gan = 0.5 if cfg["unified"] else 1                             # trainer.py:49-53
        self.lambda_pixel = 0.02                                                    # trainer.py:55
        self.lambda_id = 1                                                          # trainer.py:57
        self.lambda_landmarks = 0.001                                               # trainer.py:59
        self.r1_gamma = 10                                                          # trainer.py:60

    def g_trainable_variables(self):
        # model/generator.py: id_encoder, stylegan_s and landmarks are trainable = False; E_attr and M train. Keras's
        # InceptionV3 has no BatchNormalization gamma (scale=False): the 1 it implies is not a variable.
        params = [p for name, p in self.attr_encoder.named_parameters() if not is_bn_gamma(self.attr_encoder, name)]
        return params + list(self.mapping.parameters())

    def generator_gan_loss(self, fake_logit):                                      # trainer.py:410-415
        return self.lambda_gan * bce_with_logits(torch.ones_like(fake_logit), fake_logit)

    def discriminator_loss(self, fake_logit, real_logit):                          # trainer.py:417-430
        d_fake_loss = bce_with_logits(torch.zeros_like(fake_logit), fake_logit)
        d_real_loss = bce_with_logits(torch.ones_like(real_logit), real_logit)
        return self.lambda_gan * (d_real_loss + d_fake_loss)

    def R1_gp(self, x):                                                             # trainer.py:432-444
        x = x.detach().requires_grad_()
        pred_sum = self.w_d(x).sum()
        grad = torch.autograd.grad(pred_sum, x, create_graph=True)[0]
        norm = grad.reshape(grad.shape[0], -1).norm(dim=1)
        return 0.5 * self.r1_gamma * (norm ** 2).mean()

    def train_epoch(self, num_epoch, attr_img, id_img, real_w):
        cfg = self.cfg
        is_cross_epoch = cfg["cross_frequency"] and num_epoch % cfg["cross_frequency"] == 0   # trainer.py:72-74
        id_loss = landmarks_loss = g_w_gan_loss = pixel_loss = w_loss = 0          # trainer.py:96-101
        losses = {}
        # self.model.train() (trainer.py:104) only sets trainable flags; BatchNorm stays in inference mode.
        self.attr_encoder.eval()
        use_w_d = cfg["w_d_loss"]                                                   # trainer.py:106
        if not cfg["unified"]:                                                      # trainer.py:109-116
            if num_epoch % 2 != 0:
                use_w_d = False
        # get_batch (trainer.py:119): on same-face steps attr_img is id_img.
        if not is_cross_epoch:
            attr_img = id_img

        with torch.no_grad():                                                       # trainer.py:121-123
            id_embedding = self.e_id(id_img)
            src_landmarks = self.landmarks(attr_img)

        attr_embedding = self.attr_encoder(attr_img)                                # trainer.py:128-129
        z_tag = torch.cat([id_embedding, attr_embedding], -1)                       # trainer.py:134
        fake_w = self.mapping(z_tag)                                                # trainer.py:135-136 (w[:, 0, :])
        pred = self.stylegan_s(fake_w)                                              # trainer.py:141: every layer gets w
        pred = (pred + 1) / 2                                                       # trainer.py:144

        if use_w_d:                                                                 # trainer.py:146-161
            fake_w_logit = self.w_d(fake_w)
            g_w_gan_loss = self.generator_gan_loss(fake_w_logit)
            real_w_logit = self.w_d(real_w)
            w_d_loss = self.discriminator_loss(self.w_d(fake_w.detach()), real_w_logit)
            w_d_total_loss = w_d_loss
            if cfg["gp"]:
                w_d_gp = self.R1_gp(real_w)
                w_d_total_loss = w_d_total_loss + w_d_gp
                losses["r1"] = float(w_d_gp)
            losses["l_adv_m"], losses["l_d"] = float(g_w_gan_loss), float(w_d_loss)

        if cfg["id_loss"]:                                                          # trainer.py:167-169
            pred_id_embedding = self.e_id(pred)
            l_id = id_loss_func(pred_id_embedding, id_embedding.detach())
            id_loss = self.lambda_id * l_id
            losses["l_id"] = float(l_id)

        if cfg["landmarks_loss"]:                                                   # trainer.py:172-183
            dst_landmarks = self.landmarks(pred)
            l_lnd = ((src_landmarks - dst_landmarks) ** 2).mean(-1).mean()
            landmarks_loss = self.lambda_landmarks * l_lnd
            losses["l_lnd"] = float(l_lnd)

        if not is_cross_epoch and cfg["pixel_loss"]:                                # trainer.py:189-198
            # MeanAbsoluteError(Reduction.SUM) with sample_weight = mask [B, H, W]: the mean over channels per pixel,
            # weighted, summed over pixels and batch.
            l1_loss = ((attr_img - pred).abs().mean(1) * self.pixel_mask).sum()
            if cfg["pixel_loss_type"] == "mix":
                mssim = (1 - ms_ssim(attr_img, pred)).mean()
                l_rec = 0.84 * mssim + 0.16 * l1_loss
            else:
                l_rec = l1_loss
            pixel_loss = self.lambda_pixel * l_rec
            losses["l_rec"] = float(l_rec)

        g_gan_loss = g_w_gan_loss                                                   # trainer.py:202
        total_g_not_gan_loss = id_loss + landmarks_loss + pixel_loss + w_loss      # trainer.py:204-207
        losses["l_total"] = float(total_g_not_gan_loss)

        g_vars = self.g_optimizer.params
        g_gan_grads = None
        if use_w_d:   # taken before any update: TensorFlow's tape keeps the forward values (trainer.py:247)
            g_gan_grads = torch.autograd.grad(g_gan_loss, g_vars, retain_graph=True, allow_unused=True)
            w_d_grads = torch.autograd.grad(w_d_total_loss, list(self.w_d.parameters()))
        if torch.is_tensor(total_g_not_gan_loss) and total_g_not_gan_loss.requires_grad:   # trainer.py:238-244
            g_grads = torch.autograd.grad(total_g_not_gan_loss, g_vars, allow_unused=True)
            self.g_optimizer.apply_gradients(g_grads)
        if use_w_d:                                                                 # trainer.py:246-257
            self.g_gan_optimizer.apply_gradients(g_gan_grads)
            self.w_d_optimizer.apply_gradients(w_d_grads)
        return losses


def is_bn_gamma(module, name):
    owner = module.get_submodule(name.rsplit(".", 1)[0]) if "." in name else module
    return isinstance(owner, nn.BatchNorm2d) and name.endswith(".weight")


# ---------------------------------------------------------------- driver

def load_generator(path, dtype):
    ck = torch.load(path, map_location="cpu")
    sd = ck["g_ema"] if "g_ema" in ck else ck
    blocks = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.bias", k)])
    size = 4 * 2 ** blocks
    channels = {4: sd["input.input"].shape[1]}
    for i in range(blocks):
        channels[8 * 2 ** i] = sd[f"convs.{2 * i}.conv.weight"].shape[1]
    style_dim = sd["style.1.weight"].shape[1]
    n_mlp = len([k for k in sd if k.startswith("style.") and k.endswith(".weight")])
    g = Generator(size, style_dim=style_dim, n_mlp=n_mlp, channels=channels)
    g.load_state_dict(sd, strict=True)
    return g.to(dtype).eval()


def prefixed(sd, prefix):
    return {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}


def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for k, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()
        b = a.tobytes()
        kind = {"float64": "F64", "float32": "F32", "int64": "I64"}[str(a.dtype)]
        header[k] = {"dtype": kind, "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)


def main(root):
    cfg = json.load(open(os.path.join(root, "config.json")))
    dtype = torch.float64 if cfg.get("dtype") == "float64" else torch.float32
    torch.set_default_dtype(dtype)
    store = cfg["models_dir"]
    rec, lnd, inc = FaceRecognitionNet(), FaceLandmark68Net(), InceptionV3()
    for net, f in [(rec, "face-api/face_recognition.safetensors"), (lnd, "face-api/face_landmark_68.safetensors")]:
        net.load_state_dict(load_safetensors(os.path.join(store, f)), strict=True)
    init = os.path.join(root, "init")
    inc.load_state_dict(prefixed(load_safetensors(os.path.join(init, "e_attr.safetensors")), "backbone."), strict=True)
    e_id, landmarks = IDEncoder(rec.to(dtype).eval()), LandmarksDetector(lnd.to(dtype).eval())
    for p in list(e_id.parameters()) + list(landmarks.parameters()):
        p.requires_grad_(False)
    attr_encoder = AttrEncoder(inc.to(dtype), cfg["attr_input_size"])
    for name, p in attr_encoder.named_parameters():
        p.requires_grad_(not is_bn_gamma(attr_encoder, name))
    m_sd = load_safetensors(os.path.join(init, "mapper.safetensors"))
    widths = [m_sd["layers.0.weight"].shape[1]] + [m_sd[f"layers.{i}.weight"].shape[0] for i in range(4)]
    mapping = LatentMappingNetwork(widths)
    mapping.load_state_dict(m_sd, strict=True)
    w_d = W_D(cfg["style_dim"])
    w_d.load_state_dict(load_safetensors(os.path.join(init, "w_discriminator.safetensors")), strict=True)
    mapping.to(dtype)
    w_d.to(dtype)
    generator = load_generator(os.path.join(root, "generator.pt"), dtype)
    for p in generator.parameters():
        p.requires_grad_(False)
    trainer = Trainer(cfg, e_id, landmarks, attr_encoder, mapping, w_d, generator)
    for n in range(cfg["steps"]):
        step = os.path.join(root, f"step_{n}")
        load = lambda f: torch.from_numpy(np.load(os.path.join(step, f))).to(dtype)
        losses = trainer.train_epoch(n, load("attr.npy"), load("id.npy"), load("real_w.npy"))
        out = os.path.join(root, "reference", f"step_{n}")
        os.makedirs(out, exist_ok=True)
        json.dump(losses, open(os.path.join(out, "losses.json"), "w"))
        e_attr = {"backbone." + k: v for k, v in inc.state_dict().items()}
        save_safetensors(os.path.join(out, "e_attr.safetensors"), e_attr)
        save_safetensors(os.path.join(out, "mapper.safetensors"), mapping.state_dict())
        save_safetensors(os.path.join(out, "w_discriminator.safetensors"), w_d.state_dict())
    print(json.dumps({"steps": cfg["steps"]}))


if __name__ == "__main__":
    main(sys.argv[1])
