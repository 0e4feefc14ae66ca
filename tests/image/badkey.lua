-- badkey.lua - a test profile with a misspelt crossbar key (tests/image.t).
name = "badkey"
crossbar = { gmin = 1e-8, gmax = 1e-2, bits = 8,
  encodng = "offset" }
