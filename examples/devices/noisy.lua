-- noisy.lua - an RRAM-like crossbar with the statistical non-idealities of
-- resistive memory: 2% programming noise on every conductance, one cell in a
-- thousand stuck at Gmin and one at Gmax, and a readout with 0.01 units of
-- noise, slight conductance drift an hour after programming; fast integrated amplifiers.  For `damc run --device noisy --mc N`.
name = "noisy"
description = "RRAM-like crossbar with programming noise and stuck cells; integrated op-amps"
amplifier = {
  gain  = 1e4,
  gbw   = 5e9,
  slew  = 5e9,
  vmax  = 1.0,
  vmin  = -1.0,
  power = 1e-3,
}
crossbar = {
  rows = 1024, cols = 1024,
  gmin = 1e-7, gmax = 1e-4,
  bits = 8, encoding = "differential",
  dac_bits = 8, adc_bits = 10,
}
noise = {
  program   = 0.02,    -- relative sigma of each programmed conductance
  read      = 0.01,    -- sigma added to every output value (model units)
  stuck_min = 1e-3,    -- probability that a cell is stuck at Gmin
  stuck_max = 1e-3,    -- ... at Gmax
  tau       = 0.02,    -- relative sigma of each neuron's R2*C1
  drift       = 0.005, -- conductance drift exponent nu: G(t) = G(1 s) (t / 1 s)^-nu
  drift_sigma = 0.002, -- ... its spread from cell to cell
  drift_time  = 3600,  -- read one hour after programming
}
