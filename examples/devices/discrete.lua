-- discrete.lua - a conservative discrete build: general-purpose op-amps on a board
-- (about 10 MHz gain-bandwidth, 10 V/us slew), thin-film resistor arrays.
-- Read by `damc netlist/verify/report --device discrete` (docs/netlist.md).
name = "discrete"
description = "general-purpose discrete op-amps (10 MHz GBW, 10 V/us) and resistor arrays"
amplifier = {
  gain  = 1e5,     -- open-loop DC gain A0 (100 dB)
  gbw   = 10e6,    -- gain-bandwidth product, Hz
  slew  = 10e6,    -- slew rate, V/s (10 V/us)
  vmax  = 12,      -- output swing, V
  vmin  = -12,
  power = 20e-3,   -- static power per amplifier, W
}
crossbar = {
  rows = 256, cols = 256,     -- largest array
  gmin = 1e-7, gmax = 1e-3,   -- usable conductances, S
  bits = 6, encoding = "differential",   -- 64 levels per cell; signed weights as pairs
  dac_bits = 8, adc_bits = 8,  -- row drivers, readout
}
