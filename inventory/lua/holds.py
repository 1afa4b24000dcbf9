"""Scripts of a buyer's holds: reserve, extend, release, the payment steps (begin, confirm, abort),
expiring due holds, and the waitlist."""
from __future__ import annotations

SCRIPTS: dict[str, str] = {}

# ARGV: maxlen, user, qty, request_id
SCRIPTS["reserve"] = r"""
local user, qty, reqid = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
local rk = user .. '\n' .. reqid
local prev = redis.call('HGET', KQ, rk)
if prev then
  local r = get_res(prev)
  settle(m, prev, r)
  return finish('', m, prev, r)
end
local st = eff_state(m)
if st == 'SCHEDULED' then return reply('NOT_OPEN', m) end
if st ~= 'OPEN' then return reply('CLOSED', m) end
expire_due(m, 64)
local have = tonumber(redis.call('HGET', KU, user) or '0')
local code = nil
if have + qty > m.limit then code = 'LIMIT_REACHED' elseif m.available < qty then code = 'SOLD_OUT' end
if code then
  save_meta(m)
  return reply(code, m)
end
local rid, r = hold(m, user, qty, 0)
redis.call('HSET', KQ, rk, rid)
emit(m, 'reserved', 'reservation', rid, 'user', user, 'qty', qty, 'expires_at', r.e)
return finish('', m, rid, r)
"""

# ARGV: maxlen, rid, user, max_extend_s
SCRIPTS["extend"] = r"""
local rid = ARGV[2]
local m, r, err = open_res(rid, ARGV[3])
if err then return err end
if r.s == 'EXPIRED' then return finish('EXPIRED', m, rid, r) end
if r.s ~= 'HELD' then return finish('NOT_HELD', m, rid, r) end
if r.x == 1 then return finish('ALREADY_EXTENDED', m, rid, r) end
r.e = r.e + math.min(m.hold_s, tonumber(ARGV[4])) * 1000
r.h = r.e
r.x = 1
put_res(rid, r)
redis.call('ZADD', KX, r.e, rid)
emit(m, 'extended', 'reservation', rid, 'user', r.u, 'qty', r.q, 'expires_at', r.e)
return finish('', m, rid, r)
"""

# ARGV: maxlen, rid, user
SCRIPTS["release"] = r"""
local rid = ARGV[2]
local m, r, err = open_res(rid, ARGV[3])
if err then return err end
if r.s == 'RELEASED' then return finish('', m, rid, r) end
if r.s == 'EXPIRED' then return finish('EXPIRED', m, rid, r) end
if r.s ~= 'HELD' then return finish('NOT_HELD', m, rid, r) end
free(m, rid, r, 'RELEASED', 'released')
serve(m)
return finish('', m, rid, r)
"""

# ARGV: maxlen, rid, user, payment_grace_s, max_attempts
SCRIPTS["begin_payment"] = r"""
local rid = ARGV[2]
local m, r, err = open_res(rid, ARGV[3])
if err then return err end
if eff_state(m) == 'CANCELLED' then return finish('SALE_CANCELLED', m, rid, r) end
if r.s == 'PAYING' then return finish('', m, rid, r) end
if r.s == 'EXPIRED' then return finish('EXPIRED', m, rid, r) end
if r.s ~= 'HELD' then return finish('NOT_HELD', m, rid, r) end
if (r.n or 0) >= tonumber(ARGV[5]) then return finish('TOO_MANY_ATTEMPTS', m, rid, r) end
-- the lock never reaches past the hold's own expiry plus one grace: a hard cap from its creation
local h = r.h or r.e
local grace = tonumber(ARGV[4]) * 1000
r.h = h
r.n = (r.n or 0) + 1
r.s = 'PAYING'
r.e = math.max(h, math.min(NOW + grace, h + grace))
put_res(rid, r)
redis.call('ZADD', KX, r.e, rid)
emit(m, 'payment_begun', 'reservation', rid, 'user', r.u, 'qty', r.q, 'expires_at', r.e)
return finish('', m, rid, r)
"""

# ARGV: maxlen, rid, order_id
SCRIPTS["confirm"] = r"""
local rid, order = ARGV[2], ARGV[3]
local m, r, err = open_res(rid, nil)
if err then return err end
if r.s == 'SOLD' then
  if r.o == order then return finish('', m, rid, r) end
  return finish('NOT_PAYING', m, rid, r)
end
if eff_state(m) == 'CANCELLED' then return finish('SALE_CANCELLED', m, rid, r) end
if r.s == 'EXPIRED' then return finish('EXPIRED', m, rid, r) end
if r.s ~= 'PAYING' then return finish('NOT_PAYING', m, rid, r) end
r.s = 'SOLD'
r.o = order
put_res(rid, r)
redis.call('ZREM', KX, rid)
m.held = m.held - r.q
m.sold = m.sold + r.q
m.dirty = true
emit(m, 'sold', 'reservation', rid, 'user', r.u, 'qty', r.q, 'order_id', order)
return finish('', m, rid, r)
"""

# ARGV: maxlen, rid
SCRIPTS["abort_payment"] = r"""
local rid = ARGV[2]
local m, r, err = open_res(rid, nil)
if err then return err end
if r.s == 'HELD' then return finish('', m, rid, r) end
if r.s == 'EXPIRED' then return finish('EXPIRED', m, rid, r) end
if r.s ~= 'PAYING' then return finish('NOT_PAYING', m, rid, r) end
-- the payment lock is lifted: back to the hold's own expiry, or gone if that has passed
local h = r.h or r.e
if h <= NOW then
  free(m, rid, r, 'EXPIRED', 'expired')
  serve(m)
  return finish('EXPIRED', m, rid, r)
end
r.s = 'HELD'
r.e = h
put_res(rid, r)
redis.call('ZADD', KX, r.e, rid)
emit(m, 'payment_aborted', 'reservation', rid, 'user', r.u, 'qty', r.q, 'expires_at', r.e)
return finish('', m, rid, r)
"""

# ARGV: maxlen, limit  -> {code, levels..., expired_count, next_due_ms (-1: nothing held)}
SCRIPTS["expire_due"] = r"""
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
local n = expire_due(m, tonumber(ARGV[2]))
save_meta(m)
local out = reply('', m)
out[7] = n
local nxt = redis.call('ZRANGE', KX, 0, 0, 'WITHSCORES')
out[8] = nxt[2] and tonumber(nxt[2]) or -1
return out
"""

# ARGV: maxlen, user, qty  -> {code, levels..., position}
SCRIPTS["join_waitlist"] = r"""
local user, qty = ARGV[2], tonumber(ARGV[3])
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
local st = eff_state(m)
if st == 'SCHEDULED' then return reply('NOT_OPEN', m) end
if st ~= 'OPEN' then return reply('CLOSED', m) end
expire_due(m, 64)
save_meta(m)
if m.available > 0 then return reply('NOT_SOLD_OUT', m) end
if redis.call('HEXISTS', KWU, user) == 1 then
  local out = reply('', m)
  local pos = redis.call('LPOS', KW, user)
  out[7] = pos and pos + 1 or 0
  return out
end
local have = tonumber(redis.call('HGET', KU, user) or '0')
if have + qty > m.limit then return reply('LIMIT_REACHED', m) end
redis.call('RPUSH', KW, user)
redis.call('HSET', KWU, user, qty)
m.wl = m.wl + 1
emit(m, 'waitlist_joined', 'user', user, 'qty', qty)
local out = reply('', m)
out[7] = m.wl
return out
"""
