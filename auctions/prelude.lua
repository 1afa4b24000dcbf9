-- Shared head of every auction script (auctions/lua.py prepends it). One auction = five keys with
-- one hash tag {auc:ID}: meta (hash), req (hash user\nrequest_id -> first answer), rl (hash user ->
-- "tokens stamp", the bid rate limit), log (list, append-only JSON bid log), pre (hash user -> JSON
-- {a max, s seq, n label}: pre-bids). Time is Redis's own clock (TIME), never a client's.
local KM, KQ, KRL, KL, KP = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local tm = redis.call('TIME')
local NOW = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)

-- the increment that applies at `price`: rows {from, inc}, ascending `from`, first from = 0
local function inc_of(tbl, price)
  local inc = tbl[1][2]
  for i = 1, #tbl do
    if price >= tbl[i][1] then inc = tbl[i][2] else break end
  end
  return inc
end

local function fail(code, extra)
  local r = extra or {}
  r.ok = false
  r.code = code
  return {'E', cjson.encode(r)}
end

local function load()
  local v = redis.call('HMGET', KM, 'state', 'start', 'dur', 'counter', 'sudden', 'inc', 'reserve', 'ends_at',
                       'high', 'leader', 'lmax', 'llabel', 'bids', 'v', 'seq', 'started_at')
  if not v[1] then return nil end
  return {state = v[1], start = tonumber(v[2]), dur = tonumber(v[3]), counter = tonumber(v[4]),
          sudden = v[5] == '1', inc = cjson.decode(v[6]), reserve = tonumber(v[7]), ends_at = tonumber(v[8]),
          high = tonumber(v[9]), leader = v[10], lmax = tonumber(v[11]), llabel = v[12], bids = tonumber(v[13]),
          v = tonumber(v[14]), seq = tonumber(v[15]), started_at = tonumber(v[16])}
end

local function save(m)
  redis.call('HSET', KM, 'state', m.state, 'ends_at', m.ends_at, 'high', m.high, 'leader', m.leader,
             'lmax', m.lmax, 'llabel', m.llabel, 'bids', m.bids, 'v', m.v, 'seq', m.seq, 'started_at', m.started_at)
end

local function append(entry)
  redis.call('RPUSH', KL, cjson.encode(entry))
end
