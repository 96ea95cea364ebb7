"""Writes tiny_vggface2_layout.h5: a small Keras functional CNN in the layout of a complete Keras 2.2.4 model file
(model.save: root attribute model_config, model_weights/<layer>/<layer>/kernel:0 ...), with the layer types of the
VGGFace2 ResNet-50 the paper uses (ZeroPadding2D, Conv2D with and without bias, BatchNormalization with and without
scale, Activation, MaxPooling2D valid and same, Add, Concatenate, AveragePooling2D same and valid, Flatten, Dropout,
Dense, a Lambda L2 normalisation stored as marshalled code, a softmax classifier), plus inputs and the outputs of the
embedding (the layer before the classifier) and of the model, computed here with numpy in Keras's NHWC semantics.
   /usr/bin/python3 make_model.py   (needs python3-h5py)"""
import base64, json, marshal, os
import numpy as np
import h5py

rng = np.random.RandomState(3)
here = os.path.dirname(os.path.abspath(__file__))
layers, weights = [], {}


def layer(cls, name, config, inbound, w=None):
    config = dict(config, name=name)
    layers.append({"name": name, "class_name": cls, "config": config,
                   "inbound_nodes": [] if inbound is None else [[[i, 0, 0, {}] for i in inbound]]})
    weights[name] = w or []


def conv(name, inp, cin, cout, k, stride=1, padding="valid", bias=True):
    w = [("kernel", rng.randn(k, k, cin, cout).astype(np.float32) * np.sqrt(2.0 / (k * k * cin)))]
    if bias:
        w.append(("bias", rng.randn(cout).astype(np.float32) * 0.1))
    layer("Conv2D", name, {"filters": cout, "kernel_size": [k, k], "strides": [stride, stride], "padding": padding,
                           "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "linear", "use_bias": bias}, [inp], w)


def bn(name, inp, c, scale=True):
    w = ([("gamma", (1 + 0.1 * rng.randn(c)).astype(np.float32))] if scale else []) + [
        ("beta", (0.1 * rng.randn(c)).astype(np.float32)), ("moving_mean", (0.1 * rng.randn(c)).astype(np.float32)),
        ("moving_variance", (0.5 + rng.rand(c)).astype(np.float32))]
    layer("BatchNormalization", name, {"axis": 3, "momentum": 0.99, "epsilon": 1e-5 if scale else 1e-3, "center": True, "scale": scale}, [inp], w)


layer("InputLayer", "input_1", {"batch_input_shape": [None, 224, 224, 3], "dtype": "float32", "sparse": False}, None)
layer("ZeroPadding2D", "conv1_pad", {"padding": [[3, 3], [3, 3]], "data_format": "channels_last"}, ["input_1"])
conv("conv1/7x7_s2", "conv1_pad", 3, 8, 7, stride=2, bias=False)
bn("conv1/7x7_s2/bn", "conv1/7x7_s2", 8)
layer("Activation", "activation_1", {"activation": "relu"}, ["conv1/7x7_s2/bn"])
layer("MaxPooling2D", "max_pooling2d_1", {"pool_size": [3, 3], "strides": [2, 2], "padding": "valid", "data_format": "channels_last"}, ["activation_1"])
conv("conv2_1_1x1_reduce", "max_pooling2d_1", 8, 4, 1, bias=False)
bn("conv2_1_1x1_reduce/bn", "conv2_1_1x1_reduce", 4, scale=False)
layer("Activation", "activation_2", {"activation": "relu"}, ["conv2_1_1x1_reduce/bn"])
conv("conv2_1_3x3", "activation_2", 4, 8, 3, padding="same")
conv("conv2_1_1x1_proj", "max_pooling2d_1", 8, 8, 1, padding="same")
layer("Add", "add_1", {}, ["conv2_1_3x3", "conv2_1_1x1_proj"])
layer("Activation", "activation_3", {"activation": "relu"}, ["add_1"])
layer("AveragePooling2D", "average_pooling2d_1", {"pool_size": [3, 3], "strides": [1, 1], "padding": "same", "data_format": "channels_last"}, ["activation_3"])
layer("Concatenate", "concatenate_1", {"axis": -1}, ["activation_3", "average_pooling2d_1"])
conv("conv3_stride", "concatenate_1", 16, 8, 3, stride=2, padding="same")
layer("MaxPooling2D", "max_pooling2d_2", {"pool_size": [2, 2], "strides": [2, 2], "padding": "same", "data_format": "channels_last"}, ["conv3_stride"])
layer("AveragePooling2D", "avg_pool", {"pool_size": [7, 7], "strides": [7, 7], "padding": "valid", "data_format": "channels_last"}, ["max_pooling2d_2"])
layer("Flatten", "flatten_1", {"data_format": "channels_last"}, ["avg_pool"])
layer("Dropout", "dropout_1", {"rate": 0.5}, ["flatten_1"])
layer("Dense", "dim_proj", {"units": 32, "activation": "relu", "use_bias": True}, ["dropout_1"],
      [("kernel", rng.randn(4 * 4 * 8 if False else 2 * 2 * 8, 32).astype(np.float32) * 0.3), ("bias", (0.1 * rng.randn(32)).astype(np.float32))])
code = marshal.dumps((lambda x: K.l2_normalize(x, axis=1)).__code__)  # noqa: F821 - never run, only stored, as Keras does
layer("Lambda", "l2_norm", {"function": [base64.b64encode(code).decode(), None, None], "function_type": "lambda", "output_shape": None, "arguments": {}}, ["dim_proj"])
layer("Dense", "classifier", {"units": 10, "activation": "softmax", "use_bias": True}, ["l2_norm"],
      [("kernel", rng.randn(32, 10).astype(np.float32)), ("bias", (0.1 * rng.randn(10)).astype(np.float32))])


# ------------------------------------------------------------- numpy forward in Keras semantics (NHWC)

def same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def np_conv(x, w, b, s, padding):
    k = w.shape[0]
    if padding == "same":
        (t, bo), (l, r) = same_pads(x.shape[1], k, s), same_pads(x.shape[2], k, s)
        x = np.pad(x, ((0, 0), (t, bo), (l, r), (0, 0)))
    n, h, wd, c = x.shape
    oh, ow = (h - k) // s + 1, (wd - k) // s + 1
    out = np.zeros((n, oh, ow, w.shape[3]), dtype=np.float64)
    for i in range(k):
        for j in range(k):
            patch = x[:, i:i + s * (oh - 1) + 1:s, j:j + s * (ow - 1) + 1:s, :]
            out += patch @ w[i, j]
    return out + (b if b is not None else 0)


def np_pool(x, k, s, padding, kind):
    if padding == "same":
        (t, bo), (l, r) = same_pads(x.shape[1], k, s), same_pads(x.shape[2], k, s)
        fill = -np.inf if kind == "max" else 0.0
        valid = np.pad(np.ones_like(x[..., :1]), ((0, 0), (t, bo), (l, r), (0, 0)))
        x = np.pad(x, ((0, 0), (t, bo), (l, r), (0, 0)), constant_values=fill)
    else:
        valid = np.ones_like(x[..., :1])
    n, h, wd, c = x.shape
    oh, ow = (h - k) // s + 1, (wd - k) // s + 1
    out = np.zeros((n, oh, ow, c))
    for a in range(oh):
        for b in range(ow):
            win = x[:, a * s:a * s + k, b * s:b * s + k, :]
            out[:, a, b] = win.max(axis=(1, 2)) if kind == "max" else win.sum(axis=(1, 2)) / valid[:, a * s:a * s + k, b * s:b * s + k, :].sum(axis=(1, 2))
    return out


def forward(x):
    v = {}
    for L in layers:
        cfg, name, cls = L["config"], L["name"], L["class_name"]
        ins = [v[i[0]] for i in L["inbound_nodes"][0]] if L["inbound_nodes"] else []
        w = dict(weights[name])
        if cls == "InputLayer":
            y = x
        elif cls == "ZeroPadding2D":
            (t, b), (l, r) = cfg["padding"]
            y = np.pad(ins[0], ((0, 0), (t, b), (l, r), (0, 0)))
        elif cls == "Conv2D":
            y = np_conv(ins[0], w["kernel"], w.get("bias"), cfg["strides"][0], cfg["padding"])
        elif cls == "BatchNormalization":
            y = (ins[0] - w["moving_mean"]) / np.sqrt(w["moving_variance"] + cfg["epsilon"]) * w.get("gamma", 1.0) + w["beta"]
        elif cls == "Activation":
            y = np.maximum(ins[0], 0)
        elif cls in ("MaxPooling2D", "AveragePooling2D"):
            y = np_pool(ins[0], cfg["pool_size"][0], cfg["strides"][0], cfg["padding"], "max" if cls == "MaxPooling2D" else "avg")
        elif cls == "Add":
            y = ins[0] + ins[1]
        elif cls == "Concatenate":
            y = np.concatenate(ins, axis=-1)
        elif cls == "Flatten":
            y = ins[0].reshape(ins[0].shape[0], -1)
        elif cls == "Dropout":
            y = ins[0]
        elif cls == "Dense":
            y = ins[0] @ w["kernel"] + w["bias"]
            if cfg["activation"] == "relu":
                y = np.maximum(y, 0)
            elif cfg["activation"] == "softmax":
                e = np.exp(y - y.max(axis=1, keepdims=True))
                y = e / e.sum(axis=1, keepdims=True)
        elif cls == "Lambda":
            y = ins[0] / np.sqrt(np.maximum((ins[0] ** 2).sum(axis=1, keepdims=True), 1e-12))
        v[name] = y
    return v


x = rng.rand(2, 224, 224, 3).astype(np.float32) * 255 - 110
out = forward(x.astype(np.float64))
np.save(os.path.join(here, "input_nhwc.npy"), x)
np.save(os.path.join(here, "embedding.npy"), out["l2_norm"].astype(np.float32))
np.save(os.path.join(here, "output.npy"), out["classifier"].astype(np.float32))

config = {"class_name": "Model", "config": {"name": "vggface_resnet50_tiny", "layers": layers,
                                            "input_layers": [["input_1", 0, 0]], "output_layers": [["classifier", 0, 0]]}}
with h5py.File(os.path.join(here, "tiny_vggface2_layout.h5"), "w") as f:
    f.attrs["keras_version"] = b"2.2.4"
    f.attrs["backend"] = b"tensorflow"
    f.attrs["model_config"] = json.dumps(config).encode()
    g = f.create_group("model_weights")
    g.attrs["layer_names"] = np.array([L["name"].encode() for L in layers])
    for L in layers:
        lg = g.create_group(L["name"])
        names = [f"{L['name']}/{k}:0" for k, _ in weights[L["name"]]]
        lg.attrs["weight_names"] = np.array([n.encode() for n in names])
        for n, (_, a) in zip(names, weights[L["name"]]):
            lg.create_dataset(n, data=a)
print("embedding", out["l2_norm"].shape, "output", out["classifier"].shape)
