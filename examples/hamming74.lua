-- hamming74.lua - every single-bit error of every Hamming(7,4) codeword.
--   damc run examples/hamming74.dam -c examples/hamming74.lua --json
-- Rows come from a function: the 16 codewords of the paper's Table 1
-- (c = d1 d2 d3 d4 p1 p2 p3), each with one of its 7 bits flipped, in the
-- order codeword 0000000 flip bit 1, ..., flip bit 7, codeword 0001111 ...
-- (row r: data bits = r // 7, flipped bit = r % 7 + 1): 112 runs.
solver = "euler"
dt = 1e-3
t_end = 5

local function codeword(n)
  local d1, d2, d3, d4 = (n >> 3) & 1, (n >> 2) & 1, (n >> 1) & 1, n & 1
  return { d1, d2, d3, d4, d2 ~ d3 ~ d4, d1 ~ d3 ~ d4, d1 ~ d2 ~ d4 }
end

dataset = function()
  local rows = {}
  for n = 0, 15 do
    local c = codeword(n)
    for bit = 1, 7 do
      local w = table.move(c, 1, 7, 1, {})
      w[bit] = 1 - w[bit]
      rows[#rows + 1] = w
    end
  end
  return rows
end

outputs = { "code" }
