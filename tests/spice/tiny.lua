-- tiny.lua - a device whose crossbars hold at most 8 x 8 lines (tests only).
name = "tiny"
description = "8x8 crossbars"
amplifier = { gain = 1e5, gbw = 1e9, slew = 1e9, vmax = 2, vmin = -2, power = 1e-3 }
crossbar = { rows = 8, cols = 8, gmin = 1e-7, gmax = 1e-3 }
