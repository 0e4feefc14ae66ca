-- parity_train.lua - train the parity Analog Energy Transformer from a random
-- initialisation (workshop App. C; docs/training.md):
--   damc train examples/parity_et.dam -c examples/parity_train.lua -o ckpt.npz
--   damc run examples/parity_et.dam -c examples/parity_et.lua -D weights=ckpt.npz
-- The published checkpoint is loaded only for the model to compile (shapes);
-- init replaces every learned value.  Relative paths are against this file.
local published = "../../shared/data/published/analog-denseam-parity/"

params = { weights = published .. "model_best.npz" }

solver = "euler"
dt = 1e-3
t_end = 1

train = {
  data       = { inputs = published .. "parity_data_train_X.txt", labels = published .. "parity_data_train_y.txt" },
  validation = { inputs = published .. "parity_data_test_X.txt",  labels = published .. "parity_data_test_y.txt" },
  output = "logits",
  loss = "cross_entropy",
  settle = { weight = 1e-3, layers = { "v" } },
  epochs = 200,
  batch = 0,
  optimizer = { name = "adamw", lr = 0.03, weight_decay = 0, clip = 1.0 },
  schedule = { name = "cosine", warmup = 10, min_lr = 1e-3 },
  init = { seed = 1, std = 0.5, tensors = { a = 0, b = 0, c = 0, bdec = 0 } },
  stability = { mode = "project", margin = 0.95 },
  eval_every = 10,
}
