"""The Lua scripts: one per operation, each given the same nine keys of one lot (one hash tag).

Every script starts with PRELUDE (helpers + NOW from Redis TIME) and builds no key of its own:
it touches only KEYS[1..9], which keys_for() derives from the lot id inside the tag {lot:ID}.

Keys of a lot (tag = {lot:ID}):
  meta  hash   lot fields + counters total/available/held/sold + seq (reservation counter)
  res   hash   reservation id -> cjson {u user, q qty, s state, e expires_at, o order_id,
               c created_at, x extended 0/1, w from_waitlist 0/1, h the hold's own expiry
               (e without a payment lock), n payment attempts}; kept after final states
  exp   zset   reservation id -> expires_at, for HELD and PAYING only (the expiry index)
  usr   hash   user -> HELD + PAYING + SOLD units (the per-user limit)
  uh    hash   user -> space-separated ids of the user's HELD/PAYING/SOLD reservations
  req   hash   user "\\n" request_id -> reservation id (reserve idempotency)
  wl    list   waiting users, head first
  wlu   hash   waiting user -> wanted qty
  ev    stream capped event log (XADD MAXLEN ~ ARGV[1])

A script that appends events also SPUBLISHes the lot id once on the lot's sharded channel
`inv:changed:{lot:ID}` (core.changed_channel: the lot's hash tag, so on a Redis Cluster it is the
slot of the lot's keys and the wake reaches only that shard), so a watcher subscribed to the lots
it watches wakes on stock changes instead of polling every lot.
Compaction (script `compact`, Inventory.compact): once a lot is closed (or cancelled), holds no
units and has been quiet for a grace, it keeps only its audit summary (meta, with compacted_at and
the counts of what was dropped) and its SOLD reservations (res, usr, uh); released and expired
reservations, request ids, the waitlist and the event stream are deleted. A compacted lot cannot
be opened again.

Replies are flat arrays: {code, total, available, held, sold, waitlist, ...op specific}; code ''
means success. A reservation is appended as {id, user, qty, state, expires_at, order_id,
created_at, extended, from_waitlist, payment_attempts}.

A hold's lifetime is bounded whatever payments do: begin_payment may lock it at most until
h + payment_grace (h = created_at + hold_s [+ the one extension]), abort_payment puts the expiry
back to h (or expires the hold when h has passed), and a hold takes at most max_attempts payment
attempts (then TOO_MANY_ATTEMPTS; the hold is left to expire at h). A cancelled lot refuses
begin_payment and confirm (SALE_CANCELLED); cancelling frees every live hold (CANCELLED) and
empties the waitlist.
"""
from __future__ import annotations

PRELUDE = r"""
local KM, KR, KX, KU, KH, KQ, KW, KWU, KE = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local MAXLEN = ARGV[1]
local tm = redis.call('TIME')
local NOW = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)

local function load_meta()
  local v = redis.call('HMGET', KM, 'state', 'total', 'available', 'held', 'sold', 'limit', 'hold_s', 'opens_at', 'closes_at')
  if not v[1] then return nil end
  return {state = v[1], total = tonumber(v[2]), available = tonumber(v[3]), held = tonumber(v[4]),
          sold = tonumber(v[5]), limit = tonumber(v[6]), hold_s = tonumber(v[7]),
          opens_at = tonumber(v[8]), closes_at = tonumber(v[9]), wl = redis.call('LLEN', KW), dirty = false}
end

local function save_meta(m)
  if m.dirty then
    redis.call('HSET', KM, 'total', m.total, 'available', m.available, 'held', m.held, 'sold', m.sold)
    m.dirty = false
  end
end

local function eff_state(m)
  local st = m.state
  if st == 'CANCELLED' or st == 'CLOSED' then return st end
  if m.closes_at and NOW >= m.closes_at then return 'CLOSED' end
  if st == 'OPEN' then return 'OPEN' end
  if m.opens_at and NOW >= m.opens_at then return 'OPEN' end
  return 'SCHEDULED'
end

local function emit(m, typ, ...)
  redis.call('XADD', KE, 'MAXLEN', '~', MAXLEN, '*', 't', typ, 'at', NOW,
    'lv', m.total .. ' ' .. m.available .. ' ' .. m.held .. ' ' .. m.sold .. ' ' .. m.wl, ...)
  if not m.told then  -- wake the stock watcher once per script: "this lot has new events"
    local lot = string.match(KE, '{lot:(.*)}')
    redis.call('SPUBLISH', 'inv:changed:{lot:' .. lot .. '}', lot)
    m.told = true
  end
end

local function reply(code, m)
  if not m then return {code} end
  return {code, m.total, m.available, m.held, m.sold, m.wl}
end

local function get_res(rid)
  local s = redis.call('HGET', KR, rid)
  if not s then return nil end
  return cjson.decode(s)
end

local function put_res(rid, r)
  redis.call('HSET', KR, rid, cjson.encode(r))
end

local function eff_res_state(r)
  if (r.s == 'HELD' or r.s == 'PAYING') and r.e <= NOW then return 'EXPIRED' end
  return r.s
end

local function push_res(out, rid, r)
  local n = #out
  out[n + 1] = rid; out[n + 2] = r.u; out[n + 3] = r.q; out[n + 4] = eff_res_state(r); out[n + 5] = r.e
  out[n + 6] = r.o; out[n + 7] = r.c; out[n + 8] = r.x; out[n + 9] = r.w; out[n + 10] = r.n or 0
  return out
end

local function uh_add(user, rid)
  local s = redis.call('HGET', KH, user)
  if s then s = s .. ' ' .. rid else s = rid end
  redis.call('HSET', KH, user, s)
end

local function uh_del(user, rid)
  local s = redis.call('HGET', KH, user)
  if not s then return end
  local keep = {}
  for x in string.gmatch(s, '%S+') do if x ~= rid then keep[#keep + 1] = x end end
  if #keep == 0 then redis.call('HDEL', KH, user) else redis.call('HSET', KH, user, table.concat(keep, ' ')) end
end

-- a live (HELD/PAYING) reservation ends without a sale: units go back to available
local function free(m, rid, r, state, typ)
  r.s = state
  put_res(rid, r)
  redis.call('ZREM', KX, rid)
  m.held = m.held - r.q
  m.available = m.available + r.q
  m.dirty = true
  if redis.call('HINCRBY', KU, r.u, -r.q) <= 0 then redis.call('HDEL', KU, r.u) end
  uh_del(r.u, rid)
  emit(m, typ, 'reservation', rid, 'user', r.u, 'qty', r.q)
end

local function hold(m, user, q, from_wl)
  local rid = 'r' .. redis.call('HINCRBY', KM, 'seq', 1)
  local r = {u = user, q = q, s = 'HELD', e = NOW + m.hold_s * 1000, o = '', c = NOW, x = 0, w = from_wl, n = 0}
  r.h = r.e
  put_res(rid, r)
  redis.call('ZADD', KX, r.e, rid)
  redis.call('HINCRBY', KU, user, q)
  uh_add(user, rid)
  m.available = m.available - q
  m.held = m.held + q
  m.dirty = true
  return rid, r
end

-- freed units go to the head of the waitlist first, as fresh holds
local function serve(m)
  if eff_state(m) ~= 'OPEN' then return end
  while m.available > 0 and m.wl > 0 do
    local user = redis.call('LPOP', KW)
    m.wl = m.wl - 1
    local want = tonumber(redis.call('HGET', KWU, user) or '0')
    redis.call('HDEL', KWU, user)
    local have = tonumber(redis.call('HGET', KU, user) or '0')
    local q = math.min(want, m.available, m.limit - have)
    if q > 0 then
      local rid, r = hold(m, user, q, 1)
      emit(m, 'waitlist_granted', 'reservation', rid, 'user', user, 'qty', q, 'expires_at', r.e)
    else
      emit(m, 'waitlist_dropped', 'user', user, 'reason', 'LIMIT_REACHED')
    end
  end
end

local function expire_due(m, limit)
  local ids = redis.call('ZRANGEBYSCORE', KX, '-inf', NOW, 'LIMIT', 0, limit)
  local n = 0
  for _, rid in ipairs(ids) do
    local r = get_res(rid)
    if r and (r.s == 'HELD' or r.s == 'PAYING') then
      free(m, rid, r, 'EXPIRED', 'expired')
      n = n + 1
    else
      redis.call('ZREM', KX, rid)
    end
  end
  if n > 0 then serve(m) end
  return n
end

-- expire this one reservation if it is due (lazy expiry on every op that touches it)
local function settle(m, rid, r)
  if (r.s == 'HELD' or r.s == 'PAYING') and r.e <= NOW then
    free(m, rid, r, 'EXPIRED', 'expired')
    serve(m)
  end
end

local function lot_reply(code, m)
  local v = redis.call('HMGET', KM, 'sku', 'price', 'currency', 'created_at')
  return {code, m.total, m.available, m.held, m.sold, m.wl, v[1], v[2], v[3], m.limit, m.hold_s,
          m.opens_at or '', m.closes_at or '', eff_state(m), v[4]}
end

-- common start of ops on one reservation: lot, reservation, owner check, lazy expiry
local function open_res(rid, user)
  local m = load_meta()
  if not m then return nil, nil, {'UNKNOWN_LOT'} end
  local r = get_res(rid)
  if not r then return nil, nil, reply('UNKNOWN_RESERVATION', m) end
  if user and r.u ~= user then return nil, nil, reply('NOT_OWNER', m) end
  settle(m, rid, r)
  return m, r, nil
end

local function finish(code, m, rid, r)
  save_meta(m)
  return push_res(reply(code, m), rid, r)
end
"""

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
if #ev > 0 then quiet_since = math.max(quiet_since, tonumber(string.match(ev[1][1], '^(%d+)'))) end
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


def source(name: str) -> str:
    """Full text of one script: the shared prelude and its body."""
    return PRELUDE + SCRIPTS[name]
