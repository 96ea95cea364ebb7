# Writes the .npy files the NPY reader tests compare against, with numpy itself (Debian python3-numpy 1.24).
# Run: /usr/bin/python3 make_npy.py  (from this folder). Values are a fixed arange so the tests can recompute them.
import numpy as np
from numpy.lib import format as npf

base = np.arange(24, dtype=np.float64).reshape(2, 3, 4) * 0.5 - 3.0
np.save("f4.npy", base.astype(np.float32))
np.save("f2.npy", base.astype(np.float16))
np.save("f8.npy", base)
np.save("u1.npy", (np.arange(24) * 10 % 256).astype(np.uint8).reshape(2, 3, 4))
np.save("i8.npy", (np.arange(24, dtype=np.int64) - 12).reshape(2, 3, 4) * 1_000_000_000_000)
np.save("i4.npy", (np.arange(24, dtype=np.int32) - 12).reshape(2, 3, 4))
np.save("b1.npy", (np.arange(24) % 3 == 0).reshape(2, 3, 4))
np.save("f4_fortran.npy", np.asfortranarray(base.astype(np.float32)))
np.save("f4_bigendian.npy", base.astype(">f4"))
np.save("f4_scalar.npy", np.float32(2.5))
np.save("f4_empty.npy", np.zeros((0, 3), np.float32))
with open("f4_v2.npy", "wb") as f:
    arr = base.astype(np.float32)
    npf.write_array(f, arr, version=(2, 0))
