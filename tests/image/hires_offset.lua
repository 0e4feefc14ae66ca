-- hires_offset.lua - hires.lua with the offset encoding; a test profile for tests/image.t: 16 bits per cell over a wide
-- conductance range (1 nS .. 10 mS), so that every weight of xor, hamming74
-- and the parity checkpoint fits and quantises within 1.5e-7 S (half a step).
name = "hires-offset"
description = "16-bit test crossbar (tests/image.t)"
crossbar = {
  rows = 4, cols = 4,          -- small tiles: blocks are split
  gmin = 1e-9, gmax = 1e-2,
  bits = 16, encoding = "offset", scale = "global",
  dac_bits = 12, adc_bits = 12,
}
