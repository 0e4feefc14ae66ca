-- xor_sweep.lua - the XOR memory over its inverse temperature beta and the
-- ratio tau_h / tau_v of its time constants, on all four inputs:
--   damc sweep examples/xor.dam -c examples/xor_sweep.lua -o xor_sweep.jsonl
-- 8 betas x 7 ratios = 56 points (56 compilations), x 4 rows = 224 runs.
-- The run settings are those of xor.lua: forward Euler, dt = 1e-3, T = 5.
solver = "euler"
dt = 1e-3
t_end = 5
dataset = {
  { 0, 0 },
  { 0, 1 },
  { 1, 0 },
  { 1, 1 },
}
outputs = { "y" }

sweep = {
  grid = {
    beta = { 1, 2, 4, 6, 8, 12, 16, 32 },
    tau_ratio = { 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2 },
  },
}
