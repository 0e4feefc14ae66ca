-- parity_et.lua - the published parity Analog Energy Transformer checkpoint
-- on its 52 validation strings (DESIGN.md; paper Sec. 6.1).
--   damc run examples/parity_et.dam -c examples/parity_et.lua
-- Relative paths (the weights parameter, the dataset) are resolved against
-- this file's directory; the data lives in ../shared beside the project.
local published = "../../shared/data/published/analog-denseam-parity/"

params = { weights = published .. "model_best.npz" }
dataset = published .. "parity_data_test_X.txt"   -- 8 bits per line, MSB first

-- The settings it was trained with: forward Euler, dt = 1e-3, T = 1.
solver = "euler"
dt = 1e-3
t_end = 1
outputs = { "logits" }
