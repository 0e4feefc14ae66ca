-- slow.lua - a deliberately slew-starved micropower op-amp: decent small-signal
-- bandwidth (1 MHz) but a tiny output stage current (0.02 V/us slew rate), so
-- large, fast swings are limited by the slew rate, not by the bandwidth.
-- (Ordinary parts have SR/GBW of about 0.3-1 V; at 0.1 V per model unit the
-- Analog ET is then gain-bandwidth limited, see docs/netlist.md.)
name = "slow"
description = "slew-starved micropower op-amps (1 MHz GBW, 0.02 V/us)"
amplifier = {
  gain  = 1e5,
  gbw   = 1e6,     -- Hz
  slew  = 2e4,     -- V/s (0.02 V/us)
  vmax  = 5,
  vmin  = -5,
  power = 50e-6,   -- W
}
crossbar = {
  rows = 256, cols = 256,
  gmin = 1e-8, gmax = 1e-4,
  bits = 8, encoding = "offset",   -- 256 levels; signed weights by an offset column
  dac_bits = 10, adc_bits = 12,
}
