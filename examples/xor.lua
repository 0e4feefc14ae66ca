-- xor.lua - run the XOR memory (paper Sec. 5.1) on the four input pairs.
--   damc run examples/xor.dam -c examples/xor.lua
-- The paper's settings: forward Euler, dt = 1e-3, five time units (tau_v = 1).
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
