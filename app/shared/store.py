"""The Redis side of scale-out: key names, the Lua scripts that change a session atomically, the client.

Every key of one session shares the hash tag `{<session_id>}` (`harken:{live_…}:meta`, …),
so each script touches one Redis Cluster slot; the one global key, the index of open
sessions, is only ever touched alone. Every key carries a TTL. Times are integer
milliseconds since the epoch, taken from the calling worker's clock.

Scripts are registered once with redis-py's `register_script` (EVALSHA, reloaded by
redis-py after a restart). A script's first reply item is its verdict (`ok`, `gone`,
`closed`, `fenced`, …); the Python side turns verdicts into API errors.
"""
import ssl
import time

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

INDEX_KEY = "harken:index"  # ZSET: open session id -> its expiry (ms), a hint the reaper checks
KEY_NAMES = ("meta", "ledger", "audio", "events", "tomb", "lease", "consumer", "inbox")
ACTIVE = ("waiting_media", "ingesting")
OUTAGES = (redis.ConnectionError, redis.TimeoutError)  # BusyLoadingError is a ConnectionError


def session_keys(session_id):
    """Every key of one session, in the order each script takes them as KEYS."""
    return [f"harken:{{{session_id}}}:{name}" for name in KEY_NAMES]


def reply_key(session_id, token):
    """Where the lease holder answers one forwarded chunk (a list the sender BLPOPs)."""
    return f"harken:{{{session_id}}}:reply:{token}"


def now_ms():
    return int(time.time() * 1000)


# KEYS[1..8] = meta, ledger, audio, events, tomb, lease, consumer, inbox (KEY_NAMES).
_COMMON = r"""
local meta, ledger, audio, events, tomb, lease, consumer, inbox =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local function append_events(maxlen, first)
  local last = tonumber(redis.call('HGET', meta, 'last_id') or '0')
  for i = first, #ARGV, 2 do
    last = redis.call('HINCRBY', meta, 'last_id', 1)
    redis.call('XADD', events, 'MAXLEN', maxlen, '0-' .. last, 'n', ARGV[i], 'd', ARGV[i + 1])
  end
  return last
end
local function keep(ms, tomb_ms)
  for _, key in ipairs({meta, ledger, audio, events}) do redis.call('PEXPIRE', key, ms) end
  redis.call('PEXPIRE', tomb, tomb_ms)
end
local function set_status(status)
  redis.call('HSET', meta, 'status', status)
  redis.call('HSET', tomb, 'status', status)
end
local function fenced(token)
  return token ~= '' and redis.call('GET', lease) ~= token
end
local function is_in(value, csv)
  for item in string.gmatch(csv, '[^,]+') do if item == value then return true end end
  return false
end
"""

# ARGV: owner, conversation_id, options json, ttl_ms, now, keep_ms, tomb_ms, maxlen, name, data
CREATE = _COMMON + r"""
local ttl, now = tonumber(ARGV[4]), tonumber(ARGV[5])
redis.call('HSET', meta, 'owner', ARGV[1], 'conversation_id', ARGV[2], 'options', ARGV[3],
  'ttl_ms', ttl, 'status', 'waiting_media', 'next', 0, 'bytes', 0, 'samples', 0,
  'analysed_s', 0, 'expires', now + ttl, 'created', now, 'closed', 0, 'last_id', 0)
redis.call('HSET', tomb, 'owner', ARGV[1], 'status', 'waiting_media')
local last = append_events(ARGV[8], 9)
keep(tonumber(ARGV[6]), tonumber(ARGV[7]))
return {'ok', last}
"""

# ARGV: chunk_seq, digest (hex). Read-only: what a new chunk would meet.
CHECK = _COMMON + r"""
local status, nxt, bytes, expires = unpack(redis.call('HMGET', meta, 'status', 'next', 'bytes', 'expires'))
if not status then return {'gone'} end
local seq = tonumber(ARGV[1])
if status ~= 'waiting_media' and status ~= 'ingesting' then return {'closed', status} end
nxt = tonumber(nxt)
if seq < nxt then
  if redis.call('HGET', ledger, ARGV[1]) == ARGV[2] then return {'dup', status, nxt, bytes, expires} end
  return {'conflict', status, nxt}
end
if seq > nxt then return {'ahead', status, nxt} end
return {'new', status, nxt}
"""

# ARGV: lease token, chunk_seq, digest, samples, now, keep_ms, tomb_ms, the chunk's bytes
COMMIT = _COMMON + r"""
if fenced(ARGV[1]) then return {'fenced'} end
local status, nxt, ttl = unpack(redis.call('HMGET', meta, 'status', 'next', 'ttl_ms'))
if not status then return {'gone'} end
if status ~= 'waiting_media' and status ~= 'ingesting' then return {'closed', status} end
if tonumber(ARGV[2]) ~= tonumber(nxt) then return {'moved', status, nxt} end
redis.call('HSET', ledger, ARGV[2], ARGV[3])
redis.call('RPUSH', audio, ARGV[8])
local expires = tonumber(ARGV[5]) + tonumber(ttl)
redis.call('HSET', meta, 'expires', expires)
if status == 'waiting_media' then set_status('ingesting') end
nxt = redis.call('HINCRBY', meta, 'next', 1)
local bytes = redis.call('HINCRBY', meta, 'bytes', #ARGV[8])
local samples = redis.call('HINCRBY', meta, 'samples', ARGV[4])
keep(tonumber(ARGV[6]), tonumber(ARGV[7]))
return {'ok', status, nxt, bytes, expires, samples}
"""

# ARGV: lease token ('' = unfenced), checkpoint json ('' = none), samples to add, analysed seconds
#       ('' = unchanged), maxlen, name, data…
APPEND = _COMMON + r"""
if redis.call('EXISTS', meta) == 0 then return {'gone'} end
if redis.call('HGET', meta, 'closed') == '1' then return {'closed'} end
if fenced(ARGV[1]) then return {'fenced'} end
if ARGV[2] ~= '' then redis.call('HSET', meta, 'checkpoint', ARGV[2]) end
if ARGV[3] ~= '0' then redis.call('HINCRBY', meta, 'samples', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', meta, 'analysed_s', ARGV[4]) end
return {'ok', append_events(ARGV[5], 6)}
"""

# ARGV: from statuses (csv), to status, close ('1'/'0'), now, keep_ms, tomb_ms, lease token,
#       mode ('expire': only past the expiry with no consumer), maxlen, name, data…
TRANSITION = _COMMON + r"""
local status, expires, ttl = unpack(redis.call('HMGET', meta, 'status', 'expires', 'ttl_ms'))
if not status then return {'gone'} end
if not is_in(status, ARGV[1]) then return {'state', status} end
if fenced(ARGV[7]) then return {'fenced'} end
local now = tonumber(ARGV[4])
if ARGV[8] == 'expire' then
  if redis.call('EXISTS', consumer) == 1 then
    expires = math.max(tonumber(expires), now + tonumber(ttl))
    redis.call('HSET', meta, 'expires', expires)
    return {'alive', expires}
  end
  if tonumber(expires) > now then return {'alive', expires} end
end
set_status(ARGV[2])
if ARGV[3] == '1' then
  redis.call('HSET', meta, 'closed', 1, 'closed_at', now)
  redis.call('DEL', audio, inbox)
end
local last = append_events(ARGV[9], 10)
keep(tonumber(ARGV[5]), tonumber(ARGV[6]))
return {'ok', last}
"""

# ARGV: now, keep_ms, tomb_ms
KEEPALIVE = _COMMON + r"""
local status, ttl = unpack(redis.call('HMGET', meta, 'status', 'ttl_ms'))
if not status then return {'gone'} end
if status ~= 'waiting_media' and status ~= 'ingesting' and status ~= 'processing' then
  return {'closed', status}
end
local expires = tonumber(ARGV[1]) + tonumber(ttl)
redis.call('HSET', meta, 'expires', expires)
keep(tonumber(ARGV[2]), tonumber(ARGV[3]))
return {'ok', status, expires}
"""

# ARGV: consumer token, now. Frees the slot; an active session's expiry restarts from now.
DETACH = _COMMON + r"""
if redis.call('GET', consumer) ~= ARGV[1] then return {'other'} end
redis.call('DEL', consumer)
local status, expires, ttl = unpack(redis.call('HMGET', meta, 'status', 'expires', 'ttl_ms'))
if status == 'waiting_media' or status == 'ingesting' then
  redis.call('HSET', meta, 'expires', math.max(tonumber(expires), tonumber(ARGV[2]) + tonumber(ttl)))
end
return {'ok'}
"""

# One key. ARGV: token, ms. Renews a lease or consumer slot only while the caller holds it.
RENEW = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('PEXPIRE', KEYS[1], ARGV[2])
"""

# One key. ARGV: token. Deletes it only while the caller holds it.
RELEASE = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])
"""

# KEYS[1] = the index. ARGV: session id, expiry, max sessions, index ttl ms. The deployment-wide limit.
ADMIT = r"""
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"""


class Store:
    """Two redis-py clients on one URL (short calls; blocking reads with a longer socket timeout) and the scripts."""

    BLOCK_S = 1.0  # longest server-side block of a BLPOP/XREAD; callers loop over such slices

    def __init__(self, url, timeout_s):
        # One immediate retry on a fresh connection: after Redis restarts, every pooled
        # connection is dead, and the first call on each must not become a 503.
        common = dict(socket_connect_timeout=timeout_s, health_check_interval=0,
                      retry=Retry(NoBackoff(), 1), decode_responses=False)
        self.redis = redis.Redis.from_url(url, socket_timeout=timeout_s, **common)
        self.blocking = redis.Redis.from_url(url, socket_timeout=timeout_s + self.BLOCK_S, **common)
        register = self.redis.register_script
        self.create, self.check, self.commit = register(CREATE), register(CHECK), register(COMMIT)
        self.append, self.transition = register(APPEND), register(TRANSITION)
        self.keepalive, self.detach = register(KEEPALIVE), register(DETACH)
        self.renew, self.release, self.admit = register(RENEW), register(RELEASE), register(ADMIT)

    def problem(self):
        """None while Redis answers a PING, else why it does not, in words an operator can act
        on: a wrong password or an untrusted certificate is not an outage that waiting cures."""
        try:
            self.redis.ping()
            return None
        except (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError):
            return "authentication failed: check the user and password in HARKEN_REDIS_URL"
        except OUTAGES as exc:
            if isinstance(exc.__context__, ssl.SSLError):
                return f"TLS failed: {exc.__context__.reason or type(exc.__context__).__name__}"
            return "timed out" if isinstance(exc, redis.TimeoutError) else "no connection"

    def close(self):
        self.redis.close()
        self.blocking.close()
