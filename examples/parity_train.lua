-- parity_train.lua - train the parity Analog Energy Transformer from a random
-- initialisation (workshop App. C; docs/training.md; bench/train_parity.sh):
--   damc train examples/parity_et.dam -c examples/parity_train.lua -o ckpt.npz
--   damc run examples/parity_et.dam -c examples/parity_et.lua -D weights=ckpt.npz
-- The published checkpoint is loaded only for the model to compile (shapes);
-- init replaces every learned value.  Relative paths are against this file.
local published = "../../shared/data/published/analog-denseam-parity/"

params = { weights = published .. "model_best.npz" }

-- Training runs Euler with dt = 5e-3 (the fixed points do not depend on dt;
-- the readout is checked with dt = 1e-3 at T = 1 ... 100).
solver = "euler"
dt = 5e-3
t_end = 1

train = {
  data       = { inputs = published .. "parity_data_train_X.txt", labels = published .. "parity_data_train_y.txt" },
  validation = { inputs = published .. "parity_data_test_X.txt",  labels = published .. "parity_data_test_y.txt" },
  output = "logits",
  loss = "cross_entropy",
  -- the v-dot penalty, switched on late as in the published training
  settle = { weight = 1e-3, layers = { "v" }, start = 14000, ramp = 4000 },
  epochs = 20000,
  batch = 0,                                   -- full batch, 204 strings
  optimizer = { name = "adamw", lr = 0.01, weight_decay = 0, clip = 1.0 },
  schedule = { name = "cosine", warmup = 300, min_lr = 1e-4 },
  -- small raw weights (squared into conductances), zero biases
  init = { seed = 1, std = 0.1,
           tensors = { hopf_raw = { std = 0.06 }, Wdec = { std = 0.25 }, a = 0, b = 0, c = 0, bdec = 0 } },
  stability = { mode = "project", margin = 0.95 },
  eval_every = 500,
}
