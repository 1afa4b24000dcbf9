"""Scripts that read and keep the record: one reservation, a user's holds, the audit dump,
compaction of a settled lot, and erasing a user."""
from __future__ import annotations

SCRIPTS: dict[str, str] = {}

# ARGV: maxlen, rid -> read only, state as of NOW (due holds read as EXPIRED)
SCRIPTS["get_reservation"] = r"""
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
local r = get_res(ARGV[2])
if not r then return reply('UNKNOWN_RESERVATION', m) end
return push_res(reply('', m), ARGV[2], r)
"""

# ARGV: maxlen, user -> read only, every HELD/PAYING/SOLD reservation of the user
SCRIPTS["holds_of"] = r"""
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
local out = reply('', m)
local s = redis.call('HGET', KH, ARGV[2])
if s then
  for rid in string.gmatch(s, '%S+') do
    local r = get_res(rid)
    if r then push_res(out, rid, r) end
  end
end
return out
"""

# ARGV: maxlen -> atomic dump for audit: {code, levels..., limit, now, exp_card, #res*2 flat, '|', usr flat}
SCRIPTS["dump"] = r"""
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
local out = reply('', m)
out[7] = m.limit
out[8] = NOW
out[9] = redis.call('ZCARD', KX)
out[10] = redis.call('HGETALL', KR)
out[11] = redis.call('HGETALL', KU)
out[12] = redis.call('HGET', KM, 'compacted_at') or ''
return out
"""

# ARGV: maxlen, grace_ms -> {code, at_ms, released, expired, events, waitlist, requests}
#   ''            compacted now (at_ms = NOW; the counts are what was dropped)
#   COMPACTED     was already (at_ms = when)
#   NOT_CLOSED    still open or scheduled (at_ms = closes_at or '')
#   NOT_SETTLED   units still held (at_ms = the last hold's expiry)
#   NOT_DUE       closed and settled, quiet for less than the grace (at_ms = when it is due)
#   UNKNOWN_LOT
SCRIPTS["compact"] = r"""
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
local done = redis.call('HGET', KM, 'compacted_at')
if done then return {'COMPACTED', tonumber(done)} end
local st = eff_state(m)
if st ~= 'CLOSED' and st ~= 'CANCELLED' then return {'NOT_CLOSED', m.closes_at or ''} end
expire_due(m, 100000)
save_meta(m)
if m.held > 0 then
  local last = redis.call('ZRANGE', KX, -1, -1, 'WITHSCORES')
  return {'NOT_SETTLED', tonumber(last[2] or NOW)}
end
local quiet_since = m.closes_at or tonumber(redis.call('HGET', KM, 'created_at'))
local ev = redis.call('XREVRANGE', KE, '+', '-', 'COUNT', 1)
if #ev > 0 then  -- the last event's own `at` (its stream id can be a millisecond later)
  local f = ev[1][2]
  for i = 1, #f, 2 do
    if f[i] == 'at' then quiet_since = math.max(quiet_since, tonumber(f[i + 1])) break end
  end
end
local due = quiet_since + tonumber(ARGV[2])
if NOW < due then return {'NOT_DUE', due} end
local released, expired = 0, 0
local all = redis.call('HGETALL', KR)
for i = 1, #all, 2 do
  local r = cjson.decode(all[i + 1])
  if r.s ~= 'SOLD' then
    redis.call('HDEL', KR, all[i])
    if r.s == 'RELEASED' then released = released + 1 else expired = expired + 1 end
  end
end
local events, waiting, requests = redis.call('XLEN', KE), redis.call('LLEN', KW), redis.call('HLEN', KQ)
redis.call('DEL', KE, KQ, KW, KWU, KX)
redis.call('HSET', KM, 'compacted_at', NOW, 'c_released', released, 'c_expired', expired,
  'c_events', events, 'c_waitlist', waiting, 'c_requests', requests)
return {'', NOW, released, expired, events, waiting, requests}
"""


# ARGV: maxlen, user, pseudonym, n, rid * n, req-field...  -> {code, levels..., changed}
# Erasure: the user's reservations name the pseudonym instead (ids, quantities and states stay,
# so the audit's per-user counts still add up), their request ids are forgotten, and they leave
# the waitlist. Live and sold ones are found here (the per-user index); final ones the caller
# found by scanning (passed as rids; any that are not the user's are left alone).
SCRIPTS["forget_user"] = r"""
local user, pseudo, n = ARGV[2], ARGV[3], tonumber(ARGV[4])
local m = load_meta()
if not m then return {'UNKNOWN_LOT'} end
local ids = {}
for i = 5, 4 + n do ids[#ids + 1] = ARGV[i] end
local live = redis.call('HGET', KH, user)
if live then
  for rid in string.gmatch(live, '%S+') do ids[#ids + 1] = rid end
  redis.call('HDEL', KH, user)
  redis.call('HSET', KH, pseudo, live)
end
local units = redis.call('HGET', KU, user)
if units then
  redis.call('HDEL', KU, user)
  redis.call('HSET', KU, pseudo, units)
end
local changed = 0
for _, rid in ipairs(ids) do
  local r = get_res(rid)
  if r and r.u == user then
    r.u = pseudo
    put_res(rid, r)
    changed = changed + 1
  end
end
for i = 5 + n, #ARGV do redis.call('HDEL', KQ, ARGV[i]) end
if redis.call('HEXISTS', KWU, user) == 1 then
  redis.call('LREM', KW, 0, user)
  redis.call('HDEL', KWU, user)
  m.wl = m.wl - 1
end
emit(m, 'user_forgotten', 'user', pseudo, 'reservations', changed)
local out = reply('', m)
out[7] = changed
return out
"""
