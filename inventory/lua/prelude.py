"""The prelude every script starts with: the lot's nine keys by name, NOW from Redis TIME, and the
helpers the scripts share (meta load/save, reservations, holds, expiry, waitlist, events, replies)."""
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
