-- badenc.lua - a test profile with an unknown encoding (tests/image.t).
name = "badenc"
crossbar = { gmin = 1e-8, gmax = 1e-2, bits = 8, encoding = "twos-complement" }
