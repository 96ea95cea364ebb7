#!/usr/bin/env bash
# Makes the small seed files of the fuzz targets (tests/IdDisentangle.Tests/Fuzzing). Needs Debian's python3-torch,
# python3-numpy, python3-h5py, dpkg-deb and ffmpeg; the outputs are committed, so the tests need none of them.
set -euo pipefail
cd "$(dirname "$0")"
/usr/bin/python3 - <<'PY'
import collections, json, pickle, struct
import numpy as np, torch, h5py

torch.manual_seed(0)
sd = collections.OrderedDict(
    [("conv.weight", torch.randn(4, 3, 3, 3)), ("conv.bias", torch.randn(4)), ("steps", torch.tensor([7])),
     ("half", torch.randn(2, 3).half())])
torch.save({"state": sd, "epoch": 3, "name": "tiny", "lr": 1e-3, "flags": (True, None)}, "torch/tiny.pt")
torch.save({"state": sd, "epoch": 3}, "torch-legacy/tiny_legacy.pt", _use_new_zipfile_serialization=False)

# A plain pickle of the kinds of objects checkpoints hold (protocols 2 and 4).
obj = {"ints": [0, 1, -1, 2**31, 2**70], "floats": [0.5, float("inf")], "text": "ünï", "bytes": b"\x00\x01",
       "nested": {"t": (1, 2, (3,)), "s": {1, 2}, "f": frozenset([3])}, "od": collections.OrderedDict(a=1)}
with open("pickle/objects_p2.pkl", "wb") as f:
    pickle.dump(obj, f, protocol=2)
with open("pickle/objects_p4.pkl", "wb") as f:
    pickle.dump(obj, f, protocol=4)

np.save("npy/float32.npy", np.arange(24, dtype=np.float32).reshape(2, 3, 4))
np.save("npy/float64_fortran.npy", np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)))
np.save("npy/uint8.npy", np.arange(10, dtype=np.uint8))

# Keras's HDF5 weights layout: layer_names, and per layer weight_names and datasets.
with h5py.File("keras-h5/tiny_weights.h5", "w") as f:
    f.attrs["layer_names"] = [b"dense", b"conv"]
    f.attrs["keras_version"] = b"2.4.0"
    g = f.create_group("dense")
    g.attrs["weight_names"] = [b"dense/kernel:0", b"dense/bias:0"]
    g.create_dataset("dense/kernel:0", data=np.arange(12, dtype=np.float32).reshape(3, 4))
    g.create_dataset("dense/bias:0", data=np.zeros(4, dtype=np.float32))
    g = f.create_group("conv")
    g.attrs["weight_names"] = [b"conv/kernel:0"]
    g.create_dataset("conv/kernel:0", data=np.ones((3, 3, 2, 2), dtype=np.float32))

# The same in h5py's other layouts, so the HDF5 walk's other paths are fuzzed too: version 2 object headers and
# compact links, DEFLATE chunks in chunk B-trees, variable-length strings in global heaps.
for name, kwargs, data_kwargs in [
    ("latest", dict(libver="latest"), {}),
    ("gzip", {}, dict(compression="gzip")),
    ("vlen_committed", {}, {}),
]:
    with h5py.File(f"keras-h5/tiny_{name}.h5", "w", **kwargs) as f:
        f.attrs["layer_names"] = ["dense"] if name == "vlen_committed" else [b"dense"]
        g = f.create_group("dense")
        g.attrs["weight_names"] = [b"dense/kernel:0"]
        g.create_dataset("dense/kernel:0", data=np.arange(12, dtype=np.float32).reshape(3, 4), **data_kwargs)
        if name == "vlen_committed":
            f["float"] = np.dtype("f4")
            g.attrs.create("scale", data=np.ones(2, dtype="f4"), dtype=f["float"])

# TensorFlow.js: a manifest and its shard (float32, a quantized uint8 entry and a float16 one).
a = np.arange(6, dtype=np.float32)
q = np.array([0, 128, 255], dtype=np.uint8)
h = np.array([1.5, -2.0], dtype=np.float16)
with open("tfjs/group1-shard1of1.bin", "wb") as f:
    f.write(a.tobytes() + q.tobytes() + h.tobytes())
manifest = [{"paths": ["group1-shard1of1.bin"], "weights": [
    {"name": "dense/kernel", "shape": [2, 3], "dtype": "float32"},
    {"name": "dense/q", "shape": [3], "dtype": "float32",
     "quantization": {"dtype": "uint8", "scale": 0.01, "min": -1.0}},
    {"name": "dense/h", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}}]}]
with open("tfjs/weights_manifest.json", "w") as f:
    json.dump(manifest, f)

# safetensors (the format is 8 bytes of header length, a JSON header, the data): a Linear(3, 2).
w = np.arange(6, dtype=np.float32).reshape(2, 3)
b = np.array([0.5, -0.5], dtype=np.float32)
header = {"weight": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
          "bias": {"dtype": "F32", "shape": [2], "data_offsets": [24, 32]}, "__metadata__": {"format": "pt"}}
hb = json.dumps(header).encode()
hb += b" " * (-len(hb) % 8)
with open("safetensors/linear.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hb)) + hb + w.tobytes() + b.tobytes())
PY
# A Debian package holding one file, as libdlib-data holds the landmark model.
tmp=$(mktemp -d)
mkdir -p "$tmp/pkg/DEBIAN" "$tmp/pkg/usr/share/dlib"
printf 'Package: tiny\nVersion: 1.0\nArchitecture: all\nMaintainer: none <none@example.org>\nDescription: fuzz seed\n' \
  > "$tmp/pkg/DEBIAN/control"
printf 'not a model, a fuzz seed\n' > "$tmp/pkg/usr/share/dlib/model.dat"
dpkg-deb -Zxz --build --root-owner-group "$tmp/pkg" deb/tiny.deb >/dev/null
rm -rf "$tmp"
# Small images in the formats photos come in.
src=../../fixtures/data/photos-unaligned/DST_01.jpg
ffmpeg -v error -y -i "$src" -vf scale=40:-2 image/small.png
ffmpeg -v error -y -i "$src" -vf scale=40:-2 -q:v 4 image/small.jpg
ffmpeg -v error -y -i "$src" -vf scale=40:-2 image/small.webp
ffmpeg -v error -y -i "$src" -vf scale=40:-2 image/small.gif
ffmpeg -v error -y -i "$src" -vf scale=40:-2 image/small.bmp
# A tiny dlib shape predictor serialized by dlib itself (needs libdlib-dev).
g++ -O1 -o "${TMPDIR:-/tmp}/make_dlib_seed" make_dlib_seed.cpp $(pkg-config --cflags --libs dlib-1)
"${TMPDIR:-/tmp}/make_dlib_seed" dlib/tiny.dat
