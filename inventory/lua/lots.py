"""Scripts of a lot itself: create it, read it, change its total, open/close/cancel it, read its levels."""
from __future__ import annotations

SCRIPTS: dict[str, str] = {}

# ARGV: maxlen, sku, total, price, currency, limit, hold_s, opens_at|'', closes_at|'', lot_id
SCRIPTS["create_lot"] = r"""
if redis.call('EXISTS', KM) == 1 then
  -- the same spec again (a retry) answers the existing lot; a different one is refused
  local v = redis.call('HMGET', KM, 'sku', 'created_total', 'price', 'currency', 'limit', 'hold_s', 'opens_at', 'closes_at0')
  for i = 1, 8 do
    if v[i] ~= ARGV[i + 1] then return {'LOT_EXISTS'} end
  end
  return lot_reply('', load_meta())
end
redis.call('HSET', KM, 'created_total', ARGV[3], 'closes_at0', ARGV[9])
redis.call('HSET', KM, 'lot_id', ARGV[10], 'sku', ARGV[2], 'total', ARGV[3], 'available', ARGV[3],
  'held', 0, 'sold', 0, 'price', ARGV[4], 'currency', ARGV[5], 'limit', ARGV[6], 'hold_s', ARGV[7],
  'opens_at', ARGV[8], 'closes_at', ARGV[9], 'state', 'SCHEDULED', 'created_at', NOW, 'seq', 0)
local m = load_meta()
emit(m, 'lot_created', 'sku', ARGV[2])
return lot_reply('', m)
"""

# ARGV: maxlen
SCRIPTS["get_lot"] = r"""
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
return lot_reply('', m)
"""

# ARGV: maxlen, new_total
SCRIPTS["adjust_total"] = r"""
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
local new = tonumber(ARGV[2])
if new < m.held + m.sold then return lot_reply('BELOW_COMMITTED', m) end
m.total = new
m.available = new - m.held - m.sold
m.dirty = true
emit(m, 'total_adjusted', 'total', new)
serve(m)
save_meta(m)
return lot_reply('', m)
"""

# ARGV: maxlen, action (open|close|cancel)
SCRIPTS["set_state"] = r"""
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
local action = ARGV[2]
if m.state == 'CANCELLED' then
  if action == 'cancel' then return lot_reply('', m) end
  return lot_reply('CLOSED', m)
end
-- a compacted lot has lost its history (requests, waitlist, events): it stays closed
if action == 'open' and redis.call('HEXISTS', KM, 'compacted_at') == 1 then return lot_reply('CLOSED', m) end
if action == 'open' then
  m.state = 'OPEN'
  redis.call('HSET', KM, 'state', 'OPEN')
  if m.closes_at and m.closes_at <= NOW then
    m.closes_at = nil
    redis.call('HSET', KM, 'closes_at', '')
  end
  emit(m, 'lot_opened')
  serve(m)
elseif action == 'close' then
  m.state = 'CLOSED'
  redis.call('HSET', KM, 'state', 'CLOSED')
  emit(m, 'lot_closed')
else
  -- for good: every live hold is freed (its holder is told through the event), the waitlist emptied
  m.state = 'CANCELLED'
  redis.call('HSET', KM, 'state', 'CANCELLED')
  for _, rid in ipairs(redis.call('ZRANGE', KX, 0, -1)) do
    local r = get_res(rid)
    if r and (r.s == 'HELD' or r.s == 'PAYING') then
      free(m, rid, r, 'CANCELLED', 'hold_cancelled')
    else
      redis.call('ZREM', KX, rid)
    end
  end
  for _, user in ipairs(redis.call('LRANGE', KW, 0, -1)) do
    emit(m, 'waitlist_cancelled', 'user', user)
  end
  redis.call('DEL', KW, KWU)
  m.wl = 0
  emit(m, 'lot_cancelled')
end
save_meta(m)
return lot_reply('', m)
"""

# ARGV: maxlen
SCRIPTS["levels"] = r"""
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
return reply('', m)
"""
