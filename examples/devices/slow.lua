-- slow.lua - a micropower op-amp (1 MHz gain-bandwidth, 0.5 V/us slew): the
-- circuit still settles, but its speed is set by the slew rate.
name = "slow"
description = "micropower op-amps (1 MHz GBW, 0.5 V/us)"
amplifier = {
  gain  = 1e5,
  gbw   = 1e6,     -- Hz
  slew  = 0.5e6,   -- V/s (0.5 V/us)
  vmax  = 5,
  vmin  = -5,
  power = 50e-6,   -- W
}
crossbar = {
  rows = 256, cols = 256,
  gmin = 1e-8, gmax = 1e-4,
}
