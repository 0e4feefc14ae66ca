-- integrated.lua - a fast integrated CMOS amplifier (GHz gain-bandwidth, kV/us slew)
-- beside an on-chip resistive crossbar (RRAM-like conductance range).
name = "integrated"
description = "fast integrated CMOS op-amps (5 GHz GBW, 5 kV/us) and an on-chip crossbar"
amplifier = {
  gain  = 1e4,     -- 80 dB
  gbw   = 5e9,     -- Hz
  slew  = 5e9,     -- V/s (5000 V/us)
  vmax  = 1.0,
  vmin  = -1.0,
  power = 1e-3,    -- W
}
crossbar = {
  rows = 1024, cols = 1024,
  gmin = 1e-7, gmax = 1e-4,
  bits = 4, encoding = "differential",   -- 16 levels per cell (RRAM-like)
  dac_bits = 6, adc_bits = 8,
}
