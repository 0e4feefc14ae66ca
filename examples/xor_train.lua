-- xor_train.lua - learn the four XOR patterns of examples/xor_learn.dam from a
-- random initialisation (docs/training.md):
--   damc train examples/xor_learn.dam -c examples/xor_train.lua -o xor_ckpt.npz
solver = "euler"
dt = 1e-2
t_end = 5                    -- five visible time constants

train = {
  data = { inputs = { {0, 0}, {0, 1}, {1, 0}, {1, 1} },
           labels = { 0, 1, 1, 0 } },
  output = "y",
  loss = "squared",
  settle = 0.1,              -- (dx/dt)^2 at T on the layers y reads (v)
  epochs = 300,
  optimizer = { name = "adam", lr = 0.05 },
  init = { seed = 3, tensors = { xi = { mean = 0.5, std = 0.3 } } },
  eval_every = 50,
}
