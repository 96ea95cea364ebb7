# The HDF5 layouts h5py 3.7 (Debian 12, HDF5 1.10) writes, as a Keras weights file would hold them: run with
# /usr/bin/python3 make_layouts.py in this folder. Every file has layers layer0..layerN with kernel:0 = arange(12)+i
# (3x4) and bias:0 = ones(4)*i, in different storage.
import h5py, numpy as np
def keras_like(f, nlayers=3, **dskw):
    names=[f"layer{i}".encode() for i in range(nlayers)]
    f.attrs["layer_names"]=np.array(names, dtype="S")
    for i in range(nlayers):
        g=f.create_group(f"layer{i}")
        g.attrs["weight_names"]=np.array([f"layer{i}/kernel:0".encode(), f"layer{i}/bias:0".encode()])
        sub=g.create_group(f"layer{i}")
        sub.create_dataset("kernel:0", data=np.arange(12,dtype=np.float32).reshape(3,4)+i, **dskw)
        sub.create_dataset("bias:0", data=np.ones(4,dtype=np.float32)*i, **dskw)
with h5py.File("earliest.h5","w") as f: keras_like(f)
with h5py.File("latest.h5","w",libver="latest") as f: keras_like(f)
with h5py.File("latest_many.h5","w",libver="latest") as f: keras_like(f, nlayers=20)
with h5py.File("chunked.h5","w") as f: keras_like(f, chunks=True)
with h5py.File("latest_chunked.h5","w",libver="latest") as f: keras_like(f, chunks=True)
with h5py.File("gzip.h5","w") as f: keras_like(f, compression="gzip")
with h5py.File("vlen.h5","w") as f:
    keras_like(f)
    f.attrs["layer_names"]=[f"layer{i}" for i in range(3)]
    f.attrs["model_config"]="{\"a\":1}"
with h5py.File("trackorder.h5","w",track_order=True) as f: keras_like(f)
with h5py.File("fill.h5","w") as f:
    keras_like(f)
    f.create_dataset("extra", shape=(4,), dtype=np.float32, fillvalue=3.0)
    f["layer0"].attrs["enum"]=np.array([1,2],dtype=h5py.enum_dtype({"a":1,"b":2},basetype="i1"))
    f["layer0"].attrs["comp"]=np.array([(1,2.0)],dtype=[("x","i4"),("y","f8")])
    f["layer0"].attrs["arr"]=np.zeros((2,3),dtype=np.float64)
with h5py.File("latest_fill.h5","w",libver="latest") as f:
    keras_like(f)
    f.create_dataset("extra", shape=(4,), dtype=np.float32, fillvalue=3.0)
    f["layer0"].attrs["enum"]=np.array([1,2],dtype=h5py.enum_dtype({"a":1,"b":2},basetype="i1"))
    f["layer0"].attrs["comp"]=np.array([(1,2.0)],dtype=[("x","i4"),("y","f8")])
with h5py.File("bigattrs.h5","w",libver="latest") as f:
    keras_like(f)
    for i in range(12): f["layer1"].attrs[f"a{i}"]=np.zeros(100)
with h5py.File("committed.h5","w") as f:
    keras_like(f)
    f["mytype"]=np.dtype("f4")
    f["layer0"].attrs.create("t", data=np.zeros(3,dtype="f4"), dtype=f["mytype"])
with h5py.File("softlink.h5","w") as f:
    keras_like(f)
    f["soft"]=h5py.SoftLink("/layer0")
    f["ext"]=h5py.ExternalLink("other.h5","/x")

# An attribute bomb: earliest.h5 with layer_names's dataspace claiming 0x60000000 names (1.5 GiB of 3-byte strings
# would be 4.5 GiB; PureHDF casts the byte count to Int32) in its 56-byte message.
import struct
data = bytearray(open("earliest.h5", "rb").read())
name = data.index(b"layer_names\0")
message = name - 8  # version 1 attribute: version, reserved, name size, datatype size, dataspace size
assert data[message] == 1
datatype_size, dataspace_size = struct.unpack_from("<HH", data, message + 4)
pad = lambda n: (n + 7) // 8 * 8
dataspace = name + pad(len("layer_names") + 1) + pad(datatype_size)
assert data[dataspace] == 1 and data[dataspace + 1] == 1  # version 1, rank 1
struct.pack_into("<Q", data, dataspace + 8, 0x60000000)
open("attribute_bomb.h5", "wb").write(bytes(data))
