-- Headroom's shared mirror ledger: one upstream's buckets, the holds of
-- every replica's requests, each key's fair-order tag and daily usage.
-- Every operation is one call of this script, so it is atomic.
--
-- The arithmetic is quota.Ledger's (internal/quota/bucket.go), in
-- microseconds instead of nanoseconds: refill windows drain exactly
-- dt*eff/period with the fraction carried, counter windows reset at
-- offset + k*period, rolling days forget each minute 24 hours later,
-- AIMD cuts by 7/10 (not below 10 %, at most once a second) and grows back
-- by 5 % per full minute. ledger_test.go drives this script and a
-- quota.Ledger with the same operations and compares them.
--
-- KEYS[1]  the upstream's prefix ("headroom:{ledger}:up:NAME"); the keys
--          of its buckets, holds and replicas are derived from it, under
--          the same hash tag (one Cluster slot)
-- KEYS[2]  the keys' daily usage ("headroom:{ledger}:keyday:DAY")
-- ARGV     op, now_us (0: Redis's clock), replica, lease_us, gen candidate,
--          the caller's last generation ("" for none), n buckets, then per
--          bucket: window, part, limit, period_us, offset_us; then the
--          op's own arguments.
--
-- Numbers are Lua doubles: exact below 2^53. A refill minute drains
-- r*eff with r < 60e6 us, so it is exact for effective limits below
-- 150 million tokens per minute.
--
-- Layout, for few Redis calls per operation (a write costs about 1 us, a
-- read 0.4, and so does each table, string concatenation or format made
-- here): one hash P:m holds the clock (last), the generation (gen), the
-- end of a recovery (rec), and every bucket (b0, b1, ...: its 13 numbers
-- packed as doubles with struct), read with one HMGET and written with
-- one HSET per call; a hold is one field (its ID, cmsgpack) of its
-- replica's hash P:hs:REPLICA; each key's fair-order state is one field
-- of P:k (kv, kf, kr packed; kr < 0: none yet). Doubles round-trip
-- exactly.

local P = KEYS[1]
local KD = KEYS[2]
local M = P .. ':m'
local KH = P .. ':k'
local BF = '<ddddddddddddd'
local KF = '<ddd'
local MIN = 60000000
local HOLD = 1000000
local BEAT = 1000000
local ROLL = 1440

local function s(x) return string.format('%.0f', x) end

local function idiv(a, b)
  local q = math.floor(a / b)
  if (q + 1) * b <= a then q = q + 1 elseif q * b > a then q = q - 1 end
  return q
end

local op = ARGV[1]
local now = tonumber(ARGV[2])
local rep = ARGV[3]
local lease = tonumber(ARGV[4])
local gencand = ARGV[5]
local prevgen = ARGV[6]
local nb = tonumber(ARGV[7])
-- Bucket i's spec is ARGV[8 + 5i ..], read when the bucket is loaded (a
-- table per call costs what a Redis command does).
local a = 8 + 5 * nb

-- The fields of up to three buckets are named without a table or a
-- concatenation (the usual number; more are named as they come).
local mv
if nb == 1 then
  mv = redis.call('HMGET', M, 'last', 'gen', 'rec', 'b0')
elseif nb == 2 then
  mv = redis.call('HMGET', M, 'last', 'gen', 'rec', 'b0', 'b1')
elseif nb == 3 then
  mv = redis.call('HMGET', M, 'last', 'gen', 'rec', 'b0', 'b1', 'b2')
else
  local fields = {'last', 'gen', 'rec'}
  for i = 0, nb - 1 do fields[4 + i] = 'b' .. i end
  mv = redis.call('HMGET', M, unpack(fields))
end

-- The clock: Redis's unless the caller gives one (tests), never earlier
-- than a time already seen, as quota.Ledger's.
if now == 0 then
  local tm = redis.call('TIME')
  now = tonumber(tm[1]) * 1000000 + tonumber(tm[2])
end
local last = tonumber(mv[1] or '0')
local t = math.max(now, last)
local T = s(t)
-- No call from any replica for more than a beat (each beats at least once
-- a second): Redis was out of reach of all of them (stopped, paused, cut
-- off). Every lease is moved on by that silence, less the beat, so that
-- no live replica is reaped for Redis's outage.
if op ~= 'peek' and last > 0 and t - last > BEAT then
  local reps = redis.call('ZRANGE', P .. ':reps', 0, -1, 'WITHSCORES')
  for k = 1, #reps, 2 do redis.call('ZADD', P .. ':reps', s(tonumber(reps[k + 1]) + t - last - BEAT), reps[k]) end
end

local gen = mv[2]
local gennew = false
local wiped = false
if not gen then
  gen, gennew = gencand, true
  -- A caller that knew a generation finds none: Redis lost the ledger.
  wiped = prevgen ~= ''
end
local rec = tonumber(mv[3] or '0')

-- Buckets ------------------------------------------------------------

local B = {}

local function load(i)
  local b = B[i]
  if b then return b end
  local k = 8 + 5 * i
  local win, part, lim = tonumber(ARGV[k]), tonumber(ARGV[k + 1]), tonumber(ARGV[k + 2])
  local period, off = tonumber(ARGV[k + 3]), tonumber(ARGV[k + 4])
  -- lim, eff, floor, step, ai, cut, used, frac, at, epoch, res, inf, head
  local raw = mv[4 + i]
  if raw then
    local l, eff, floor, step, ai, cut, used, frac, at, epoch, res, inf, head = struct.unpack(BF, raw)
    if l == lim then
      -- One constructor: a table grown field by field rehashes as it grows.
      b = {i = i, win = win, part = part, period = period, off = off, lim = lim, eff = eff, floor = floor,
           step = step, ai = ai, cut = cut, used = used, frac = frac, at = at, epoch = epoch, res = res,
           inf = inf, head = head}
      B[i] = b
      return b
    end
    -- Its limit changed (a replica with another configuration): start
    -- the limit afresh, keeping what is used and held.
    b = {i = i, win = win, part = part, period = period, off = off, used = used, frac = frac, res = res,
         inf = inf, at = at, epoch = epoch, head = head}
  else
    -- New.
    b = {i = i, win = win, part = part, period = period, off = off, used = 0, frac = 0, res = 0, inf = 0,
         at = t, epoch = idiv(t - off, period), head = idiv(t, MIN)}
  end
  lim = math.max(lim, 0)
  b.lim, b.eff = lim, lim
  b.floor = idiv(lim * 10, 100)
  if b.floor < 1 and lim > 0 then b.floor = 1 end
  b.step = math.max(idiv(lim * 5, 100), 1)
  b.ai, b.cut = t, t - HOLD
  B[i] = b
  return b
end

-- rolling: forget the minutes that left the last 24 hours at minute m.
local function rollAdvance(b, m)
  if m <= b.head then return 0 end
  local key = P .. ':r:' .. b.i
  local dropped = 0
  local all = redis.call('HGETALL', key)
  for k = 1, #all, 2 do
    if tonumber(all[k]) <= m - ROLL then
      dropped = dropped + tonumber(all[k + 1])
      redis.call('HDEL', key, all[k])
    end
  end
  b.head = m
  return dropped
end

local function drain(b, tt)
  if tt <= b.at then return end
  local dt = tt - b.at
  b.at = tt
  if b.used <= 0 then b.used, b.frac = 0, 0 return end
  if b.eff <= 0 then return end
  local whole = idiv(dt, b.period)
  if whole > 0 and whole * b.eff >= b.used then b.used, b.frac = 0, 0 return end
  local r = dt - whole * b.period
  local num = r * b.eff + b.frac
  local q = idiv(num, b.period) + whole * b.eff
  if q >= b.used then b.used, b.frac = 0, 0 return end
  b.used = b.used - q
  b.frac = num - idiv(num, b.period) * b.period
end

local function regain(b, tt)
  if b.win == 0 then
    drain(b, tt)
  elseif b.win == 1 then
    local e = idiv(tt - b.off, b.period)
    if e > b.epoch then b.epoch, b.used = e, 0 end
  else
    b.used = b.used - rollAdvance(b, idiv(tt, MIN))
  end
end

local function advance(b, tt)
  while b.eff < b.lim do
    local nx = b.ai + MIN
    if nx > tt then break end
    regain(b, nx)
    b.eff = math.min(b.lim, b.eff + b.step)
    b.ai = nx
  end
  regain(b, tt)
end

local function consume(b, tt, n)
  b.used = b.used + n
  if b.win == 2 then
    local m = idiv(tt, MIN)
    b.used = b.used - rollAdvance(b, m)
    redis.call('HINCRBY', P .. ':r:' .. b.i, s(m), s(n))
  end
end

local function unconsumeRequest(b, epoch)
  if b.win == 1 then
    if epoch == b.epoch and b.used > 0 then b.used = b.used - 1 end
  elseif b.win == 0 then
    if b.used > 1 then b.used = b.used - 1 else b.used, b.frac = 0, 0 end
  end
end

local function avail(b) return b.eff - b.used - b.res end

-- Holds --------------------------------------------------------------

-- parseSet reads a set ("0,1"); the same string is read once per call
-- (a carried settlement and the reserve after it have the same set).
-- Callers do not change the list.
local SETS = {}
local function parseSet(str)
  local set = SETS[str]
  if set then return set end
  set = {}
  for x in string.gmatch(str, '[^,]+') do set[#set + 1] = tonumber(x) end
  SETS[str] = set
  return set
end

-- Each replica's holds are the fields of one hash (HS .. replica, by
-- ID): a hold is made, read and ended with one command on a key named
-- once per call, and a replica's holds are found by its name (reap).
local HS = P .. ':hs:'
local MINE = HS .. rep
local function hkey(r)
  if r == rep then return MINE end
  return HS .. r
end

-- A hold: its buckets (set, as the caller wrote them), what it holds
-- (held) and has consumed (charged) per part, the request's epoch (re),
-- its key, the tokens charged to the key (kt), the key's weight (w), its
-- replica (rep) and its expected cost in fair order (kc).
local function saveHold(h)
  redis.call('HSET', hkey(h.rep), h.id, cmsgpack.pack(h.setstr, h.held[0], h.held[1], h.held[2],
    h.charged[0], h.charged[1], h.charged[2], h.re, h.key, h.kt, h.w, h.rep, h.kc))
end

-- saveNew saves a new hold of this replica (saveHold's packing, with
-- nothing charged yet) without a table for it.
local function saveNew(id, setstr, c, re, key, kt, w, kc)
  redis.call('HSET', MINE, id, cmsgpack.pack(setstr, c[0], c[1], c[2], 0, 0, 0, re, key, kt, w, rep, kc))
end

-- loadHold reads hold id of replica r (nil: this one).
local function loadHold(id, r)
  local raw = redis.call('HGET', hkey(r or rep), id)
  if not raw then return nil end
  local setstr, h0, h1, h2, c0, c1, c2, re, key, kt, w, rp, kc = cmsgpack.unpack(raw)
  return {id = id, setstr = setstr, set = parseSet(setstr), held = {[0] = h0, h1, h2},
          charged = {[0] = c0, c1, c2}, re = re, key = key, kt = kt, w = w, rep = rp, kc = kc}
end

-- holdConsume counts tok (per part) as consumed, out of the hold first.
local function holdConsume(h, tok)
  for p = 0, 2 do
    local delta = tok[p] - h.charged[p]
    if delta > 0 then
      local take = math.min(delta, h.held[p])
      for _, i in ipairs(h.set) do
        local b = load(i)
        if b.part == p then
          advance(b, t)
          b.res = b.res - take
          consume(b, t, delta)
        end
      end
      h.held[p] = h.held[p] - take
      h.charged[p] = tok[p]
    end
  end
end

-- The keys' tokens today (KD) change by what kdAdd adds, written once per
-- key in save: a settlement carried by a reserve of the same key costs
-- no command of its own. kdGet reads a key's tokens with what is added.
local KDD = {}
local function kdAdd(key, n) KDD[key] = (KDD[key] or 0) + n end
local function kdGet(key) return tonumber(redis.call('HGET', KD, key) or '0') + (KDD[key] or 0) end

-- A key's place in fair order is its tag: kv, what its ended requests
-- cost, plus kf, what its requests in flight are expected to cost (their
-- reservation times the key's recent ratio of cost to reservation, kr, as
-- internal/admission's fair.go charges them), both divided by its weight. A key coming back is moved up to the others' kv only: their
-- reservations in flight are corrected to their real cost when they end,
-- and must not put it behind them for good.
local K = {}

-- kload reads the fair state of the keys of list not read yet, in one call.
local function kload(list)
  if #list == 1 and K[list[1]] then return end
  local need, seen = {}, {}
  for _, k in ipairs(list) do
    if not K[k] and not seen[k] then
      seen[k] = true
      need[#need + 1] = k
    end
  end
  if #need == 0 then return end
  local v = redis.call('HMGET', KH, unpack(need))
  for j, k in ipairs(need) do
    local e = {kv = 0, kf = 0, kr = -1}
    if v[j] then e.kv, e.kf, e.kr = struct.unpack(KF, v[j]) end
    K[k] = e
  end
end

local function kget(key)
  if not K[key] then kload({key}) end
  return K[key]
end

local function fadd(f, key, d)
  if key == '' or d == 0 then return end
  local e = kget(key)
  local v = e[f] + d
  if f == 'kf' and v < 1e-6 then v = 0 end
  e[f], e.dirty = v, true
end

local function tag(key)
  local e = kget(key)
  return e.kv + e.kf
end

local function ratio(key)
  local r = kget(key).kr
  if r < 0 then return 1 end
  return r
end

-- holdEnd releases what h still holds and deletes it; cancel takes back
-- its request (and its charge to the key).
local function holdEnd(h, cancel, keyday)
  for _, i in ipairs(h.set) do
    local b = load(i)
    if b.part < 0 then
      if cancel then advance(b, t) unconsumeRequest(b, h.re) end
    else
      b.res = b.res - h.held[b.part]
    end
    b.inf = b.inf - 1
  end
  local final = h.charged[0] + h.charged[1] + h.charged[2]
  -- The key's daily usage and fair tag move from the admission charge to
  -- what the request consumed.
  if h.key ~= '' then
    if keyday and h.kt ~= final then kdAdd(h.key, final - h.kt) end
    fadd('kf', h.key, -h.kc)
    fadd('kv', h.key, final / h.w)
    if not cancel and h.kt > 0 then
      local r = math.min(final / h.kt, 1)
      local e = kget(h.key)
      if e.kr >= 0 then r = e.kr + (r - e.kr) / 4 end
      e.kr, e.dirty = r, true
    end
  end
  redis.call('HDEL', hkey(h.rep), h.id)
end

-- newHold records a hold this replica just made (or re-publishes).
local function newHold(id, setstr, c, re, key, kt, w)
  local kc = 0
  if key ~= '' then kc = kt * ratio(key) / w end
  saveNew(id, setstr, c, re, key, kt, w, kc)
  if key ~= '' then
    kdAdd(key, kt)
    fadd('kf', key, kc)
  end
end

-- A ledger Redis lost admits nothing for half a lease, while every live
-- replica (each beats at least once a second) re-publishes its holds and
-- what it consumed (restore).
local recset = false
if wiped then rec, recset = t + math.floor(lease / 2), true end

-- Replicas: a lease per replica, renewed by its beats (at least one a
-- second); the holds of one whose lease ran out are settled at what they
-- hold (the upstream may have run them) by the next beat of any replica.
local function reap()
  redis.call('ZADD', P .. ':reps', s(t + lease), rep)
  local dead = redis.call('ZRANGEBYSCORE', P .. ':reps', '-inf', '(' .. T)
  for _, r in ipairs(dead) do
    for _, id in ipairs(redis.call('HKEYS', hkey(r))) do
      local h = loadHold(id, r)
      if h then
        holdConsume(h, {[0] = h.charged[0] + h.held[0], h.charged[1] + h.held[1], h.charged[2] + h.held[2]})
        holdEnd(h, false, nil)
      end
    end
    redis.call('DEL', hkey(r))
    redis.call('ZREM', P .. ':reps', r)
    local kb = redis.call('ZRANGE', P .. ':kb', 0, -1)
    for _, m in ipairs(kb) do
      if string.sub(m, 1, #r + 1) == r .. '|' then redis.call('ZREM', P .. ':kb', m) end
    end
end
end

-- Fair order across replicas -----------------------------------------

-- backlog returns the smallest tag and the smallest kv among keys other
-- than key that some replica has waiting (nil when none), and whether key
-- itself is backlogged.
local function backlog(key)
  local tmin, dmin = nil, nil
  local mine = false
  local ks = {key}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', P .. ':kb', T, '+inf')) do
    ks[#ks + 1] = string.sub(m, string.find(m, '|', 1, true) + 1)
  end
  kload(ks)
  for j = 2, #ks do
    local k = ks[j]
    if k == key then
      mine = true
    else
      local d = K[k].kv
      local v = d + K[k].kf
      if tmin == nil or v < tmin then tmin = v end
      if dmin == nil or d < dmin then dmin = d end
    end
  end
  return tmin, dmin, mine
end

-- join moves a key that was not backlogged up to dmin: no credit for the
-- time it sent nothing.
local function join(key, dmin)
  local e = kget(key)
  if dmin and e.kv < dmin then e.kv, e.dirty = dmin, true end
end

local function markBacklog(key, ttl)
  redis.call('ZADD', P .. ':kb', s(t + ttl), rep .. '|' .. key)
end

-- Replies ------------------------------------------------------------

-- save writes what this call changed: the clock, the generation, the
-- buckets and the keys' fair state, in one call each.
local function bpack(b)
  return struct.pack(BF, b.lim, b.eff, b.floor, b.step, b.ai, b.cut, b.used, b.frac, b.at, b.epoch, b.res, b.inf, b.head)
end

local function save()
  -- state loaded every bucket: the usual few are written without a table.
  if gennew or recset or nb > 3 then
    local m = {'HSET', M, 'last', T}
    if gennew then m[#m + 1], m[#m + 2] = 'gen', gen end
    if recset then m[#m + 1], m[#m + 2] = 'rec', s(rec) end
    for i, b in pairs(B) do
      m[#m + 1] = 'b' .. i
      m[#m + 1] = bpack(b)
    end
    redis.call(unpack(m))
  elseif nb == 1 then
    redis.call('HSET', M, 'last', T, 'b0', bpack(B[0]))
  elseif nb == 2 then
    redis.call('HSET', M, 'last', T, 'b0', bpack(B[0]), 'b1', bpack(B[1]))
  else
    redis.call('HSET', M, 'last', T, 'b0', bpack(B[0]), 'b1', bpack(B[1]), 'b2', bpack(B[2]))
  end
  local k
  for key, e in pairs(K) do
    if e.dirty then
      if k then
        k[#k + 1] = key
        k[#k + 1] = struct.pack(KF, e.kv, e.kf, e.kr)
      else
        k = {'HSET', KH, key, struct.pack(KF, e.kv, e.kf, e.kr)}
      end
    end
  end
  if k then redis.call(unpack(k)) end
  local kd = false
  for key, n in pairs(KDD) do
    if n ~= 0 then redis.call('HINCRBY', KD, key, s(n)) end
    kd = true
  end
  if kd then redis.call('EXPIRE', KD, 172800) end
end

-- state ends every operation: it saves, and replies with the generation,
-- the live replicas and every bucket's eff, used and reserved (integers).
local function state(o1, o2)
  local z = redis.call('ZCARD', P .. ':reps')
  for i = 0, nb - 1 do advance(load(i), t) end
  if op ~= 'peek' then save() end
  -- One constructor for the usual few buckets: a table grown an element
  -- at a time is copied as it grows.
  local b0, b1, b2 = B[0], B[1], B[2]
  if nb == 1 then return {o1, o2, gen, z, b0.eff, b0.used, b0.res} end
  if nb == 2 then return {o1, o2, gen, z, b0.eff, b0.used, b0.res, b1.eff, b1.used, b1.res} end
  if nb == 3 then
    return {o1, o2, gen, z, b0.eff, b0.used, b0.res, b1.eff, b1.used, b1.res, b2.eff, b2.used, b2.res}
  end
  local out = {o1, o2, gen, z}
  for i = 0, nb - 1 do
    local b = B[i]
    out[#out + 1] = b.eff
    out[#out + 1] = b.used
    out[#out + 1] = b.res
  end
  return out
end

-- hold makes hold id of cost c in the buckets of set (loaded and
-- advanced): held in each bucket, a request counted in a request bucket.
local function hold(id, setstr, set, c, key, kt, w)
  local re = 0
  for _, i in ipairs(set) do
    local b = B[i]
    if b.part < 0 then
      consume(b, t, 1)
      re = b.epoch
    else
      b.res = b.res + c[b.part]
    end
    b.inf = b.inf + 1
  end
  newHold(id, setstr, c, re, key, kt, w)
  return ''
end

-- Operations ---------------------------------------------------------

-- holdOp adjusts (counts cost as consumed so far), settles or cancels
-- the hold id, if there is one (a hold ended already, by a retried or late
-- operation or its replica's lease, changes nothing).
local function holdOp(kind, id, c0, c1, c2)
  local h = loadHold(id)
  if not h then return end
  if kind ~= 'cancel' then
    holdConsume(h, {[0] = math.max(tonumber(c0), 0), math.max(tonumber(c1), 0), math.max(tonumber(c2), 0)})
  end
  if kind == 'adjust' then
    saveHold(h)
  else
    holdEnd(h, kind == 'cancel', KD)
  end
end

-- throttle cuts the buckets of setstr (an upstream throttled).
local function throttle(setstr)
  for _, i in ipairs(parseSet(setstr)) do
    local b = load(i)
    advance(b, t)
    b.ai = t
    if t - b.cut >= HOLD then
      b.cut = t
      b.eff = math.max(b.floor, idiv(b.eff * 7, 10))
    end
  end
end

-- overdraw makes shadow mode's hold id of cost c0..c2 in the buckets of
-- setstr for key (weight w) whether or not it fits, and checks neither the
-- key's budget nor fair order (quota.Ledger.Overdraw): the request goes
-- upstream anyway, and every replica's mirror must count it. A hold that
-- exists already (a retried call) is left as it is.
local function overdraw(id, setstr, c0, c1, c2, key, w)
  if redis.call('HEXISTS', MINE, id) == 1 then return end
  local set = parseSet(setstr)
  local c = {[0] = tonumber(c0), tonumber(c1), tonumber(c2)}
  for _, i in ipairs(set) do advance(load(i), t) end
  hold(id, setstr, set, c, key, c[0] + c[1] + c[2], tonumber(w))
end

-- runOps runs the operations from ARGV[k]: their count, then each: adjust,
-- settle or cancel, the hold, its cost0, cost1, cost2; throttle, the set,
-- and three unused; or overdraw, the hold, its set, cost0, cost1, cost2,
-- key and weight. A call retried after a lost reply changes nothing more
-- (a hold is made and ends once, an adjustment counts what was consumed
-- so far, a bucket is cut at most once a second); their outcomes are not
-- replied.
local function runOps(k)
  local n = tonumber(ARGV[k] or '0')
  local i = k + 1
  for _ = 1, n do
    local kind = ARGV[i]
    if kind == 'throttle' then
      throttle(ARGV[i + 1])
    elseif kind == 'overdraw' then
      overdraw(ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], ARGV[i + 7])
      i = i + 3
    else
      holdOp(kind, ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4])
    end
    i = i + 5
  end
end

if op == 'reserve' then
  -- id, set, cost0, cost1, cost2, key, weight, budget, backlog_ttl, then
  -- operations to run first (runOps): the replica's settlements carried
  -- along, so that they need no round trip of their own
  runOps(a + 9)
  local id, set = ARGV[a], parseSet(ARGV[a + 1])
  local c = {[0] = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])}
  local key, w, budget, bttl = ARGV[a + 5], tonumber(ARGV[a + 6]), tonumber(ARGV[a + 7]), tonumber(ARGV[a + 8])
  local kt = c[0] + c[1] + c[2]
  if redis.call('HEXISTS', MINE, id) == 1 then return state('ok', '') end
  if rec > t then return state('full', 'recovering') end
  if key ~= '' and budget > 0 then
    local used = kdGet(key)
    if used + kt > budget then return state('budget', s(used)) end
  end
  if key ~= '' then
    local tmin, dmin, mine = backlog(key)
    if not mine then join(key, dmin) end
    -- A key may run at most one request ahead of the most-behind key
    -- another replica has waiting.
    local v = tag(key)
    if tmin and v > tmin + kt * ratio(key) / w then
      markBacklog(key, bttl)
      return state('fair', string.format('%.17g', v - tmin))
    end
  end
  local never = false
  local fits = true
  for _, i in ipairs(set) do
    local b = load(i)
    advance(b, t)
    local n = 1
    if b.part >= 0 then n = c[b.part] end
    if avail(b) < n then
      fits = false
      if n > b.lim then never = true end
    end
  end
  if not fits then
    if key ~= '' and not never then markBacklog(key, bttl) end
    if never then return state('never', '') end
    return state('full', '')
  end
  return state('ok', hold(id, ARGV[a + 1], set, c, key, kt, w))
end

if op == 'batch' then
  -- n, then n operations (see runOps)
  runOps(a)
  return state('ok', '')
end

if op == 'beat' then
  -- backlog_ttl, then the keys this replica has waiting (replaces its list)
  reap()
  redis.call('ZREMRANGEBYSCORE', P .. ':kb', '-inf', '(' .. T)
  local bttl = tonumber(ARGV[a])
  local want = {}
  for k = a + 1, #ARGV do want[ARGV[k]] = true end
  for _, m in ipairs(redis.call('ZRANGE', P .. ':kb', 0, -1)) do
    if string.sub(m, 1, #rep + 1) == rep .. '|' and not want[string.sub(m, #rep + 2)] then
      redis.call('ZREM', P .. ':kb', m)
    end
  end
  for k, _ in pairs(want) do
    local _, dmin, mine = backlog(k)
    if not mine then join(k, dmin) end
    markBacklog(k, bttl)
  end
  return state('ok', '')
end

-- publish adds a replica's share of the ledger from ARGV[k] on (restore's
-- and absorb's arguments): n consumption entries (bucket, tokens), m key
-- entries (key, tokens today), then holds: id, set, h0, h1, h2, key, kt,
-- weight. A hold that exists already is left alone.
local function publish(k)
  local nc = tonumber(ARGV[k])
  k = k + 1
  for _ = 1, nc do
    local b = load(tonumber(ARGV[k]))
    advance(b, t)
    local n = tonumber(ARGV[k + 1])
    if n > 0 then consume(b, t, n) end
    k = k + 2
  end
  local nk = tonumber(ARGV[k])
  k = k + 1
  for _ = 1, nk do
    redis.call('HINCRBY', KD, ARGV[k], ARGV[k + 1])
    redis.call('EXPIRE', KD, 172800)
    k = k + 2
  end
  while k + 7 <= #ARGV do
    local id, setstr = ARGV[k], ARGV[k + 1]
    if redis.call('HEXISTS', MINE, id) == 0 then
      local c = {[0] = tonumber(ARGV[k + 2]), tonumber(ARGV[k + 3]), tonumber(ARGV[k + 4])}
      for _, i in ipairs(parseSet(setstr)) do
        local b = load(i)
        advance(b, t)
        if b.part >= 0 then b.res = b.res + c[b.part] end
        b.inf = b.inf + 1
      end
      newHold(id, setstr, c, 0, ARGV[k + 5], tonumber(ARGV[k + 6]), tonumber(ARGV[k + 7]))
    end
    k = k + 8
  end
end

if op == 'restore' then
  -- publish's arguments
  reap()
  local done = P .. ':restored:' .. gen
  if redis.call('SISMEMBER', done, rep) == 1 then return state('ok', 'again') end
  redis.call('SADD', done, rep)
  redis.call('EXPIRE', done, 86400)
  publish(a)
  return state('ok', '')
end

if op == 'absorb' then
  -- token, the generation the replica counted its share in, then
  -- publish's arguments: what a replica used on its own while Redis did
  -- not answer. Once per token: a retry after a lost reply changes
  -- nothing. Refused ('gone') when Redis lost that generation since: the
  -- replica then re-publishes everything (restore).
  reap()
  if ARGV[a + 1] ~= gen then return state('gone', 'gen') end
  if not redis.call('SET', P .. ':absorbed:' .. ARGV[a], '1', 'NX', 'EX', 86400) then return state('ok', 'again') end
  publish(a + 2)
  return state('ok', '')
end

if op == 'peek' then
  -- nothing: the state as it is, written nowhere (tests, tools)
  return state('ok', '')
end

return redis.error_reply('headroom ledger: unknown op ' .. tostring(op))
