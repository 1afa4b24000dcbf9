-- Mark an existing, not removed message: answer a question or pin a message.
-- KEYS: 1 stream, 2 removed hash, 3 target hash   ARGV: 1 message id, 2 field (or '' = the id),
--       3 required kind ('' = any)
-- -> {at_ms, fields...} | {-1} no such message | {-2} wrong kind | {-3} removed
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return {-1} end
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return {-3} end
local fields = found[1][2]
if ARGV[3] ~= '' then
  local kind = 'chat'
  for i = 1, #fields, 2 do if fields[i] == 'k' then kind = fields[i + 1] end end
  if kind ~= ARGV[3] then return {-2} end
end
if ARGV[2] == '' then
  redis.call('HSETNX', KEYS[3], ARGV[1], now)
else
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[1])
end
local out = {now}
for _, v in ipairs(fields) do out[#out + 1] = v end
return out
