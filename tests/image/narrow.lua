-- narrow.lua - a test profile whose conductance range (at most 1 uS) is too
-- small for a unit weight (g0 = 10 uS): tests/image.t expects a located error.
name = "narrow"
crossbar = { gmin = 1e-8, gmax = 1e-6, bits = 8, encoding = "differential", scale = "global" }
