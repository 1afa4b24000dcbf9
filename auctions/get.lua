-- ARGV: user ('' = none). The auction's fields, and the user's pre-bid.
if redis.call('EXISTS', KM) == 0 then return {} end
local mine = ''
if ARGV[1] ~= '' then mine = redis.call('HGET', KP, ARGV[1]) or '' end
return {redis.call('HGETALL', KM), mine, NOW}
