#!/usr/bin/env python3
# mkdata.py - regenerate the tiny NumPy fixtures of tests/errors/ without numpy:
# raw .npy v1.0 bytes written by hand, and a stored (uncompressed) .npz zip.
#   m2x3.npy     float64 [2, 3] = 1..6
#   complex3.npy complex128 [3] (a dtype damc must reject)
#   small.npz    a: float32 [4], W: float64 [2, 3]
import struct, zipfile, os

def npy(descr, shape, data):
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, repr(tuple(shape)))
    pad = (64 - (10 + len(hdr) + 1) % 64) % 64
    hdr = hdr + ' ' * pad + '\n'
    return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(hdr)) + hdr.encode('latin1') + data

os.chdir(os.path.dirname(os.path.abspath(__file__)))
m23 = npy('<f8', (2, 3), struct.pack('<6d', 1, 2, 3, 4, 5, 6))
open('m2x3.npy', 'wb').write(m23)
open('complex3.npy', 'wb').write(npy('<c16', (3,), struct.pack('<6d', 1, 0, 2, 0, 3, 0)))
a4 = npy('<f4', (4,), struct.pack('<4f', 0.5, -0.5, 1, 0))
with zipfile.ZipFile('small.npz', 'w', zipfile.ZIP_STORED) as z:
    for name, data in (('a.npy', a4), ('W.npy', m23)):
        zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        z.writestr(zi, data)
