-- revive.lua - tests/train.t: one revival move (train.revive, docs/training.md)
-- on tests/train/revive.dam.  Unit 0 of hop.h is active on x = (1, 0) only,
-- unit 1 on (0, 1) only, unit 2 is dead (c = -5).  The row (1, 0) is the
-- worst fit (y = 1.12 for a target of 3), so unit 2 takes unit 0's pattern
-- and a bias that puts its kink halfway between h_0 on (1, 0) and on the
-- next highest row, (0.5, 0.5):
--   v_0 = (1 - 0.49 * 0.3) / (1 - 0.49^2) = 1.12252, h_0 = 0.49 v_0 - 0.3 = 0.25004
--   h_0(0.5, 0.5) = 0.49 * 0.5 - 0.3 = -0.055
--   c_2 = -0.3 - (0.25004 - 0.055) / 2 = -0.39752
-- The learning rate is tiny so that the one SGD step before it moves nothing.
solver = "euler"; dt = 2e-3; t_end = 2
train = {
  data = { inputs = { {1, 0}, {0, 1}, {0.5, 0.5}, {0, 0} }, labels = { 3, 0, 1, 0 } },
  loss = "squared", epochs = 1, eval_every = 1,
  optimizer = { name = "sgd", lr = 1e-9, weight_decay = 0 },
  init = { tensors = { P = { values = { {0.7, 0}, {0, 0.7}, {0.3, 0.3} } }, c = { values = { -0.3, -0.3, -5 } },
                       wo = 1 } },
  stability = "off",
  revive = { at = { 1 } },
}
