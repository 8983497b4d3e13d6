/**
 * The Redis synchronizer: shared/exclusive locks on key sets for processes and hosts that share nothing
 * but Redis, with Redlock over N independent masters (N = 1, 3 or 5). Import it from `zarr-tx/redis`;
 * this is the only module that loads `ioredis`.
 *
 * Protocol of one acquisition (`acquireSet`):
 * 1. The lock set is normalized (`resolveLockSet`: sorted, deduplicated, a key in both lists exclusive).
 *    The request gets a random owner token and a priority: a number that grows with every request of
 *    this synchronizer and otherwise follows the wall clock, so requests are ordered by (priority, token)
 *    in the same way on every master and in this process's arrival order.
 * 2. The set is first taken in this synchronizer's own `InProcessSynchronizer`, so that tasks of one
 *    process contend locally (instant hand-over, no polling) and only one of them at a time asks Redis
 *    for conflicting keys. While a request waits in that local queue, it keeps "intents" registered in
 *    Redis (see step 3), so that other processes see it waiting.
 * 3. One Lua script per master (ACQUIRE) takes the whole set or nothing, atomically. A key is free for an
 *    exclusive request when it has no exclusive owner, no live shared owner and no older live intent; for
 *    a shared request when it has no exclusive owner and no older live exclusive intent. On a grant the
 *    script stores the owner token with the TTL and returns a fencing token; on a refusal it stores this
 *    request's intents (unless it is a try-lock) and returns 0.
 * 4. The script is sent to every master at once. The request holds the lease when a majority grants it
 *    while validity = TTL − elapsed − drift (drift = TTL × driftFactor + 2 ms) is still positive. The
 *    lease's fence is the largest fence among the granting masters; its deadline is the start of the
 *    attempt plus TTL − drift, on both the monotonic and the wall clock. Masters that did not grant are
 *    cleaned of this request's intents in the background.
 * 5. Otherwise the attempt failed: the masters that granted (or did not answer) are released before the
 *    next attempt, while the intents stay. The request waits `retryDelayMs` plus up to `retryJitterMs`
 *    and tries again, until it is granted, `timeoutMs` runs out (`ERR_LOCK_TIMEOUT`), the signal aborts
 *    (`ERR_LOCK_ABORTED`), the synchronizer closes (`ERR_SYNCHRONIZER_CLOSED`), `retryCount` retries are
 *    spent (`ERR_LOCK_TIMEOUT`), or fewer than a majority of masters answered for `quorumTimeoutMs`
 *    (`ERR_QUORUM_UNAVAILABLE`). A request that gives up removes its intents and holds nothing.
 * 6. While held, the lease is extended (EXTEND script) when a third of the TTL is left: each master
 *    renews the keys this token holds and takes back those it lost but that are free (a master restarted
 *    empty). A majority that holds every key renews the deadline. The lease is lost, and `lease.signal`
 *    aborts with a `LeaseLostError`, as soon as a majority can no longer hold it, or when the deadline
 *    passes (a local timer, and a clock check whenever `signal` is read, so a paused or partitioned
 *    process notices without Redis).
 * 7. `release` runs the RELEASE script on every master: it deletes only what this token owns, and
 *    records the fence so that later fences of every master are larger. Then the local lease is freed.
 *    It is idempotent.
 *
 * Journal marks (`markJournal`/`clearJournal`, for stores where listing the journal costs a request):
 * a mark is a Redis key without TTL per exclusive lock key, written to every reachable master (at least
 * a majority) and deleted only by `clearJournal`. ACQUIRE reports in its grant whether any key of the set
 * carries one, so `journalHint` costs nothing extra; any granting master's mark makes the hint "marked".
 *
 * Fencing tokens are hybrid logical clocks: a master issues max(last fence + 1, its clock in
 * microseconds), and every release raises each master's last fence to the lease's fence. Successive
 * holders of a key therefore get increasing fences even though two leases are granted by different
 * majorities, and even after a master restarts empty (see docs/redis-synchronizer.md).
 *
 * Every script is called by SHA (EVALSHA); after a NOSCRIPT reply (a restarted or flushed master) it is
 * sent once with EVAL, which also caches it again.
 */

import { createHash, randomUUID } from "node:crypto";
import { Cluster, Redis } from "ioredis";
import { InvalidArgumentError, LeaseLostError, LockError } from "../errors.js";
import {
  InProcessSynchronizer,
  lockAbortedError,
  lockTimeoutError,
  modeOfSorted,
  type ResolvedLockSet,
  resolveLockSet,
  synchronizerClosedError,
} from "./in-process.js";
import type { AcquireOptions, Lease, LockMode, LockSet, Synchronizer } from "./types.js";

// ---------------------------------------------------------------------------------------------------
// Lua scripts. Layout shared by all of them: KEYS[1] is the fence register of the key prefix, KEYS[2..]
// are the lock keys with the prefix (`base`). Each lock key is stored in up to three Redis keys:
//   base..':x'  string: the exclusive owner's token, with the TTL as PX
//   base..':s'  sorted set: shared owners' tokens scored by their expiry (server ms); the key itself
//               expires no earlier than its longest-lived member, so crashed owners leave nothing behind
//   base..':w'  hash: intents of waiting requests, token -> "<priority>:<x|s>:<expiry ms>"
//   base..':j'  string, no TTL: the journal mark (`Lease.markJournal`): a holder of the key may have left
//               a journal entry naming it; deleted by `clearJournal`, never by RELEASE or expiry
// The suffix's last letter tells the kinds apart, so two lock keys never share a Redis key. `modes` is
// one letter per lock key: 'x' exclusive, 's' shared. No script can fail halfway (a Lua error would
// leave partial writes): every argument is produced by this module and checked before the first write.
// ---------------------------------------------------------------------------------------------------

/**
 * Multi-key commands over many keys, in batches: Lua's `unpack` cannot spread more than a few thousand
 * values at once. `batched` sums integer replies (EXISTS, DEL); `mget` concatenates MGET replies.
 */
const BATCHED_LUA = `local function batched(command, names)
  local total = 0
  for from = 1, #names, 1000 do
    total = total + redis.call(command, unpack(names, from, math.min(from + 999, #names)))
  end
  return total
end
local function mget(names)
  local out = {}
  for from = 1, #names, 1000 do
    local part = redis.call('MGET', unpack(names, from, math.min(from + 999, #names)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end`;

const ACQUIRE_LUA = `
local token = ARGV[1]
local ttl = tonumber(ARGV[2])
local modes = ARGV[3]
local prio = tonumber(ARGV[4])
local intentTtl = tonumber(ARGV[5])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local n = #KEYS
local withIntents = {}
${BATCHED_LUA}
-- Does something keep lock key i from this request? Prunes expired intents on the way.
local function blocks(i)
  local base = KEYS[i]
  local exclusive = string.byte(modes, i - 1) == 120
  local x = base .. ':x'
  local s = base .. ':s'
  local w = base .. ':w'
  if exclusive then
    if redis.call('EXISTS', x, s, w) == 0 then return false end
  elseif redis.call('EXISTS', x, w) == 0 then
    return false
  end
  local owner = redis.call('GET', x)
  if owner and owner ~= token then return true end
  if exclusive and redis.call('ZCOUNT', s, '(' .. now, '+inf') > 0 then return true end
  if redis.call('EXISTS', w) == 0 then return false end
  withIntents[i] = true
  local blocked = false
  local fields = redis.call('HGETALL', w)
  for j = 1, #fields, 2 do
    local other = fields[j]
    local p, m, e = string.match(fields[j + 1], '^(%d+):(%a):(%d+)$')
    if e == nil or tonumber(e) <= now then
      redis.call('HDEL', w, other)
    elseif other ~= token and (exclusive or m == 'x') then
      p = tonumber(p)
      -- Only an older request (by priority, then token: the same order on every master) blocks.
      if p < prio or (p == prio and other < token) then blocked = true end
    end
  end
  return blocked
end
-- The common case, keys nobody holds or waits for, is settled by one EXISTS over all of them.
local names = {}
for i = 2, n do
  local base = KEYS[i]
  names[#names + 1] = base .. ':x'
  names[#names + 1] = base .. ':w'
  if string.byte(modes, i - 1) == 120 then names[#names + 1] = base .. ':s' end
end
local blocked = false
if batched('EXISTS', names) > 0 then
  for i = 2, n do
    if blocks(i) then
      blocked = true
      break
    end
  end
end
if blocked then
  if intentTtl > 0 then
    local expiry = string.format('%.0f', now + intentTtl)
    for i = 2, n do
      local w = KEYS[i] .. ':w'
      redis.call('HSET', w, token, ARGV[4] .. ':' .. string.sub(modes, i - 1, i - 1) .. ':' .. expiry)
      if redis.call('PTTL', w) < intentTtl then redis.call('PEXPIRE', w, intentTtl) end
    end
  end
  return 0
end
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local fence = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
if fence <= last then fence = last + 1 end
local fenceText = string.format('%.0f', fence)
redis.call('SET', KEYS[1], fenceText)
local expiry = now + ttl
for i = 2, n do
  local base = KEYS[i]
  if string.byte(modes, i - 1) == 120 then
    redis.call('SET', base .. ':x', token, 'PX', ttl)
  else
    local s = base .. ':s'
    redis.call('ZADD', s, expiry, token)
    if redis.call('PTTL', s) < ttl then redis.call('PEXPIRE', s, ttl) end
  end
  if withIntents[i] then redis.call('HDEL', base .. ':w', token) end
end
-- Journal marks of any key of the set: one EXISTS, so the hint costs no extra round trip.
local marks = {}
for i = 2, n do marks[#marks + 1] = KEYS[i] .. ':j' end
if batched('EXISTS', marks) > 0 then return fenceText .. 'm' end
return fenceText
`;

/** Registers intents only: a request that waits in the local queue shows other processes it is waiting. */
const INTEND_LUA = `
local token = ARGV[1]
local modes = ARGV[2]
local intentTtl = tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local expiry = string.format('%.0f', now + intentTtl)
for i = 2, #KEYS do
  local w = KEYS[i] .. ':w'
  redis.call('HSET', w, token, ARGV[3] .. ':' .. string.sub(modes, i - 1, i - 1) .. ':' .. expiry)
  if redis.call('PTTL', w) < intentTtl then redis.call('PEXPIRE', w, intentTtl) end
end
return 1
`;

/**
 * Frees what the token owns (never another owner's lock) and/or drops its intents (ARGV[4]: 'all',
 * 'locks' or 'intents'), and records the lease's fence (ARGV[3], '0' for none).
 */
const RELEASE_LUA = `
local token = ARGV[1]
local modes = ARGV[2]
local locks = ARGV[4] ~= 'intents'
local intents = ARGV[4] ~= 'locks'
${BATCHED_LUA}
local exclusive = {}
for i = 2, #KEYS do
  local base = KEYS[i]
  if not locks then
  elseif string.byte(modes, i - 1) == 120 then
    exclusive[#exclusive + 1] = base .. ':x'
  else
    redis.call('ZREM', base .. ':s', token)
  end
  if intents then redis.call('HDEL', base .. ':w', token) end
end
if #exclusive > 0 then
  -- Read every owner at once, delete only this token's.
  local owners = mget(exclusive)
  local mine = {}
  for j = 1, #exclusive do
    if owners[j] == token then mine[#mine + 1] = exclusive[j] end
  end
  if #mine > 0 then batched('DEL', mine) end
end
local fence = tonumber(ARGV[3])
if fence > 0 and fence > tonumber(redis.call('GET', KEYS[1]) or '0') then
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1
`;

/**
 * Renews every key the token holds, and takes back keys it no longer holds but that are free (a master
 * restarted empty, or a grant that arrived after the quorum was decided). Returns how many it holds.
 */
const EXTEND_LUA = `
local token = ARGV[1]
local ttl = tonumber(ARGV[2])
local modes = ARGV[3]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local held = 0
for i = 2, #KEYS do
  local base = KEYS[i]
  local x = base .. ':x'
  local owner = redis.call('GET', x)
  if string.byte(modes, i - 1) == 120 then
    if owner == token then
      redis.call('PEXPIRE', x, ttl)
      held = held + 1
    elseif not owner and redis.call('ZCOUNT', base .. ':s', '(' .. now, '+inf') == 0 then
      redis.call('SET', x, token, 'PX', ttl)
      held = held + 1
    end
  elseif not owner then
    local s = base .. ':s'
    redis.call('ZADD', s, now + ttl, token)
    if redis.call('PTTL', s) < ttl then redis.call('PEXPIRE', s, ttl) end
    held = held + 1
  end
end
return held
`;

/** Sets the journal mark (no TTL) of every exclusive key of the set: ARGV[1] token, ARGV[2] modes. */
const MARK_LUA = `
local token = ARGV[1]
local modes = ARGV[2]
local marked = 0
for i = 2, #KEYS do
  if string.byte(modes, i - 1) == 120 then
    redis.call('SET', KEYS[i] .. ':j', token)
    marked = marked + 1
  end
end
return marked
`;

/** Deletes the journal mark of every exclusive key of the set, whoever set it: ARGV[2] modes. */
const CLEAR_LUA = `
local modes = ARGV[2]
${BATCHED_LUA}
local names = {}
for i = 2, #KEYS do
  if string.byte(modes, i - 1) == 120 then names[#names + 1] = KEYS[i] .. ':j' end
end
if #names > 0 then batched('DEL', names) end
return 1
`;

interface Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;
}

function script(name: string, source: string): Script {
  // Redis names a script by the SHA-1 of its exact source, so the digest is known without a round trip.
  return { name, source, sha: createHash("sha1").update(source).digest("hex") };
}

const ACQUIRE = script("acquire", ACQUIRE_LUA);
const INTEND = script("intend", INTEND_LUA);
const RELEASE = script("release", RELEASE_LUA);
const EXTEND = script("extend", EXTEND_LUA);
const MARK = script("mark", MARK_LUA);
const CLEAR = script("clear", CLEAR_LUA);

// ---------------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------------

/**
 * One Redis master: a `redis://` or `rediss://` URL (the synchronizer then owns the connection and closes
 * it in `close()`), or an ioredis `Redis` or `Cluster` client that the caller owns and closes.
 */
export type RedisMaster = string | Redis | Cluster;

/** Options of a {@link RedisSynchronizer}. */
export interface RedisSynchronizerOptions {
  /**
   * The independent Redis masters of the Redlock quorum: 1, 3 or 5 (any odd number up to 9). They must be
   * separate servers (not replicas of each other): a lease needs a majority of them.
   */
  readonly masters: readonly RedisMaster[];
  /** Lease time-to-live in Redis, in ms: how long a crashed holder can block others. Default 10 000. */
  readonly ttlMs?: number;
  /** Clock drift allowance as a fraction of the TTL, subtracted from every lease's validity. Default 0.01. */
  readonly driftFactor?: number;
  /** Retries after the first attempt before giving up with `ERR_LOCK_TIMEOUT`. Default Infinity (until `timeoutMs`). */
  readonly retryCount?: number;
  /** Wait between attempts on busy keys, in ms. Default 20. */
  readonly retryDelayMs?: number;
  /** Up to this many ms are added at random to each wait, so that contenders do not retry in lockstep. Default 20. */
  readonly retryJitterMs?: number;
  /**
   * Prefix of every Redis key the synchronizer writes. Default `"zarr-tx:"`. With Redis Cluster it must
   * contain a hash tag, e.g. `"{zarr-tx}:"`, so that the keys of one script share a slot.
   */
  readonly keyPrefix?: string;
  /** Extend held leases automatically before they expire. Default true. */
  readonly autoExtend?: boolean;
  /**
   * How long an acquisition keeps retrying while fewer than a majority of masters answer, before it
   * rejects with `ERR_QUORUM_UNAVAILABLE`, in ms. Default `ttlMs`.
   */
  readonly quorumTimeoutMs?: number;
  /**
   * How long one attempt waits for a master's reply before counting it as unavailable, in ms. Default
   * `max(50, ttlMs / 10)`.
   */
  readonly masterTimeoutMs?: number;
  /** Names the synchronizer in error messages. Default "Redis synchronizer". */
  readonly name?: string;
}

interface Settings {
  readonly ttlMs: number;
  readonly driftMs: number;
  readonly retryCount: number;
  readonly retryDelayMs: number;
  readonly retryJitterMs: number;
  readonly keyPrefix: string;
  readonly autoExtend: boolean;
  readonly quorumTimeoutMs: number;
  readonly masterTimeoutMs: number;
  /** Intents live one TTL, like a lease: a crashed waiter blocks others for at most that long. */
  readonly intentTtlMs: number;
  readonly name: string;
}

function invalid(message: string): never {
  throw new InvalidArgumentError(`RedisSynchronizer: ${message}`);
}

function numberOption(value: unknown, name: string, fallback: number, min: number, max = Infinity): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || Number.isNaN(value) || value < min || value > max) {
    invalid(`${name} must be a number from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

function settingsOf(options: RedisSynchronizerOptions): Settings {
  const ttlMs = Math.round(numberOption(options.ttlMs, "ttlMs", 10_000, 10, 2 ** 31 - 1));
  const driftFactor = numberOption(options.driftFactor, "driftFactor", 0.01, 0, 0.5);
  const retryCount = numberOption(options.retryCount, "retryCount", Infinity, 0);
  if (retryCount !== Infinity && !Number.isInteger(retryCount)) {
    invalid(`retryCount must be a whole number or Infinity, got ${retryCount}`);
  }
  const retryDelayMs = numberOption(options.retryDelayMs, "retryDelayMs", 20, 0);
  const retryJitterMs = numberOption(options.retryJitterMs, "retryJitterMs", 20, 0);
  // A waiter refreshes its intents at every attempt; they must outlive the wait between two attempts.
  if (retryDelayMs + retryJitterMs >= ttlMs / 2) {
    invalid(`retryDelayMs + retryJitterMs must be less than half of ttlMs (${ttlMs})`);
  }
  const keyPrefix = options.keyPrefix ?? "zarr-tx:";
  if (typeof keyPrefix !== "string") invalid(`keyPrefix must be a string, got ${typeof keyPrefix}`);
  const autoExtend = options.autoExtend ?? true;
  if (typeof autoExtend !== "boolean") invalid(`autoExtend must be a boolean, got ${typeof autoExtend}`);
  const quorumTimeoutMs = numberOption(options.quorumTimeoutMs, "quorumTimeoutMs", ttlMs, 0);
  const masterTimeoutMs = numberOption(
    options.masterTimeoutMs,
    "masterTimeoutMs",
    Math.max(50, Math.round(ttlMs / 10)),
    1,
    ttlMs,
  );
  const name = options.name ?? "Redis synchronizer";
  return {
    ttlMs,
    // Redlock's allowance: clocks may drift apart by a fraction of the TTL, and Redis expires keys with
    // up to a millisecond of error.
    driftMs: Math.ceil(ttlMs * driftFactor) + 2,
    retryCount,
    retryDelayMs,
    retryJitterMs,
    keyPrefix,
    autoExtend,
    quorumTimeoutMs,
    masterTimeoutMs,
    intentTtlMs: ttlMs,
    name,
  };
}

/** True when `prefix` holds a non-empty Redis Cluster hash tag: `{...}` with something between the braces. */
function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf("{");
  if (open < 0) return false;
  const close = prefix.indexOf("}", open + 1);
  return close > open + 1;
}

// ---------------------------------------------------------------------------------------------------
// Masters
// ---------------------------------------------------------------------------------------------------

type Client = Redis | Cluster;

interface Master {
  readonly client: Client;
  /** Made from a URL by this synchronizer, which therefore disconnects it on close. */
  readonly owned: boolean;
  /** "master 2 of 3 (host:port)": never the URL, which may carry a password. */
  readonly label: string;
  /** Secrets that must not appear in messages (the URL's password), for `redact`. */
  readonly secrets: readonly string[];
  /** Became ready at least once. */
  everReady: boolean;
  /** Callbacks waiting for the first connection (see `Core.#call`). */
  readonly readyWaiters: Set<() => void>;
  readonly onReady: () => void;
  readonly onError: (error: unknown) => void;
  lastError: string | undefined;
}

/** Removes credentials from a message: `//user:password@` in URLs, and any known password. */
function redact(message: string, secrets: readonly string[]): string {
  let out = message.replace(/\/\/[^\s/@]*@/g, "//***@");
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join("***");
  return out;
}

/**
 * A copy of an error that is safe to keep as a `cause`: ioredis errors can carry the command and its
 * arguments, and connection errors can name the URL.
 */
function safeError(error: unknown, secrets: readonly string[]): Error {
  const message = error instanceof Error ? error.message : String(error);
  const copy = new Error(redact(message, secrets));
  if (error instanceof Error) copy.name = error.name;
  return copy;
}

function openMaster(spec: RedisMaster, index: number, count: number): Master {
  let client: Client;
  let owned = false;
  let where: string;
  const secrets: string[] = [];
  if (typeof spec === "string") {
    let url: URL;
    try {
      url = new URL(spec);
    } catch {
      // Not even the text of a bad URL goes into the message: it may be a password pasted by mistake.
      invalid(`master ${index + 1} is not a valid redis:// URL`);
    }
    if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
      invalid(`master ${index + 1} must be a redis:// or rediss:// URL, got protocol ${url.protocol}`);
    }
    if (url.password) secrets.push(url.password, decodeURIComponent(url.password));
    where = `${url.hostname}:${url.port || "6379"}`;
    client = new Redis(spec, {
      // A lock command must run now or never. Queued or sent again after a reconnection, it could run
      // much later, on a master that restarted empty, and take a lock nobody tracks: so no offline queue
      // and no resending (commands wait for the first connection in `Core.#call` instead). Reconnect
      // quickly: a master that comes back is needed again.
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 1,
      retryStrategy: (times: number) => Math.min(times * 50, 1000),
      disableClientInfo: true,
    });
    owned = true;
  } else if (spec instanceof Cluster) {
    client = spec;
    where = "cluster";
  } else if (spec instanceof Redis) {
    client = spec;
    where = `${spec.options.host ?? "localhost"}:${spec.options.port ?? 6379}`;
    if (spec.options.password) secrets.push(spec.options.password);
  } else {
    invalid(`master ${index + 1} must be a redis:// URL or an ioredis Redis or Cluster client`);
  }
  const master: Master = {
    client,
    owned,
    label: `master ${index + 1} of ${count} (${where})`,
    secrets,
    everReady: client.status === "ready",
    readyWaiters: new Set(),
    onReady: () => {
      master.everReady = true;
      for (const wake of master.readyWaiters) wake();
      master.readyWaiters.clear();
    },
    onError: (error: unknown) => {
      master.lastError = redact(error instanceof Error ? error.message : String(error), secrets);
    },
    lastError: undefined,
  };
  client.on("ready", master.onReady);
  // ioredis prints unhandled 'error' events; ours are reported through the outcome of each call instead.
  if (owned) client.on("error", master.onError);
  return master;
}

/** Identity of a master for the duplicate check. */
function serverOf(spec: RedisMaster): string | undefined {
  if (typeof spec === "string") {
    try {
      const url = new URL(spec);
      return `${url.hostname}:${url.port || "6379"}`;
    } catch {
      return undefined;
    }
  }
  if (spec instanceof Redis) return `${spec.options.host ?? "localhost"}:${spec.options.port ?? 6379}`;
  return undefined;
}

/** One master's answer to one script call. */
type Outcome =
  | { readonly kind: "pending" }
  | { readonly kind: "skipped" }
  | { readonly kind: "reply"; readonly value: unknown }
  | { readonly kind: "error"; readonly error: unknown };

const PENDING: Outcome = { kind: "pending" };
const SKIPPED: Outcome = { kind: "skipped" };

function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith("NOSCRIPT");
}

/** A short, bounded description of a key set for messages. */
function describeKeys(keys: readonly string[]): string {
  const shown = keys.slice(0, 3).join(", ");
  if (keys.length <= 3) return `${keys.length} key${keys.length === 1 ? "" : "s"} (${shown})`;
  return `${keys.length} keys (${shown} and ${keys.length - 3} more)`;
}

/** Resolves after `ms`, or as soon as one of the signals aborts. Never rejects. */
function pause(ms: number, signals: readonly (AbortSignal | undefined)[]): Promise<void> {
  return new Promise((resolve) => {
    const live = signals.filter((s): s is AbortSignal => s !== undefined);
    if (live.some((s) => s.aborted)) {
      resolve();
      return;
    }
    const done = () => {
      clearTimeout(timer);
      for (const s of live) s.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    for (const s of live) s.addEventListener("abort", done, { once: true });
  });
}

const NOT_YET: unique symbol = Symbol("not yet");
const NOT_YET_PROMISE: Promise<typeof NOT_YET> = Promise.resolve(NOT_YET);

// ---------------------------------------------------------------------------------------------------
// The core: masters, scripts, the retry loop. Shared by the synchronizer and its leases.
// ---------------------------------------------------------------------------------------------------

/** What a successful acquisition hands to its lease. */
interface Grant {
  readonly fence: bigint;
  /** A granting master reported a journal mark on some key of the set (see `Lease.journalHint`). */
  readonly marked: boolean;
  readonly monoDeadline: number;
  readonly wallDeadline: number;
}

/** The Redis side of one lock set: token, keys with prefix, and the mode letters, computed once. */
interface RedisRequest {
  readonly set: ResolvedLockSet;
  readonly token: string;
  readonly prio: string;
  /** KEYS of every script: the fence register, then each lock key with the prefix. */
  readonly keys: readonly string[];
  readonly modes: string;
}

class Core {
  readonly settings: Settings;
  readonly masters: readonly Master[];
  readonly quorum: number;
  readonly fenceKey: string;
  /** Aborted by `close()`: wakes every waiting acquisition and extension. */
  readonly closeController = new AbortController();
  /** Work started in the background (cleanups, extensions) that `close()` waits for. */
  readonly background = new Set<Promise<unknown>>();
  #lastPrio = 0;

  constructor(settings: Settings, masters: readonly Master[]) {
    this.settings = settings;
    this.masters = masters;
    this.quorum = Math.floor(masters.length / 2) + 1;
    this.fenceKey = `${settings.keyPrefix}fence`;
  }

  get closed(): boolean {
    return this.closeController.signal.aborted;
  }

  /** Keeps a background promise until it settles, so that `close()` can wait for it. */
  track(promise: Promise<unknown>): void {
    const settled: Promise<unknown> = promise.then(
      () => this.background.delete(settled),
      () => this.background.delete(settled),
    );
    this.background.add(settled);
  }

  request(set: ResolvedLockSet): RedisRequest {
    // Strictly increasing in this process (so local arrival order and Redis order agree, which keeps the
    // two queues from waiting on each other), and close to wall-clock microseconds across processes.
    this.#lastPrio = Math.max(this.#lastPrio + 1, Date.now() * 1000);
    const { keyPrefix } = this.settings;
    const n = set.keys.length;
    const keys = new Array<string>(n + 1);
    keys[0] = this.fenceKey;
    let modes = "";
    for (let i = 0; i < n; i++) {
      keys[i + 1] = keyPrefix + set.keys[i]!;
      modes += set.modes[i] === "exclusive" ? "x" : "s";
    }
    return { set, token: randomUUID(), prio: String(this.#lastPrio), keys, modes };
  }

  #usable(master: Master): boolean {
    // A master that was ready once and is now reconnecting is down: skipping it fails fast instead of
    // queueing a command that might run much later. Before the first connection, `#call` waits for it
    // (our connections) or the caller's client queues as it was configured to.
    return master.everReady ? master.client.status === "ready" : master.client.status !== "end";
  }

  /** Waits up to `waitMs` for a master's first connection. */
  #firstConnection(master: Master, waitMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        master.readyWaiters.delete(wake);
        resolve(master.client.status === "ready");
      };
      const timer = setTimeout(wake, waitMs);
      master.readyWaiters.add(wake);
    });
  }

  async #call(master: Master, script: Script, numKeys: number, argv: readonly string[], waitMs: number) {
    // A connection of ours that is not up yet has no offline queue: wait for it (the first acquisition
    // of a new synchronizer), bounded like a reply.
    if (master.owned && !master.everReady && master.client.status !== "ready") {
      if (!(await this.#firstConnection(master, waitMs))) {
        throw new Error(
          `not connected within ${waitMs} ms${master.lastError ? ` (${master.lastError})` : ""}`,
        );
      }
    }
    try {
      return await master.client.evalsha(script.sha, numKeys, ...argv);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      // The master lost its script cache (restart, SCRIPT FLUSH): EVAL runs the script and caches it.
      return await master.client.eval(script.source, numKeys, ...argv);
    }
  }

  /**
   * Runs a script on every usable master in parallel (`only`, when given, picks the masters; the others
   * are "skipped"). `argv` is KEYS then ARGV. Never rejects. `decided` resolves with one outcome per
   * master as soon as `decide` says the answer is known, every master answered, or `waitMs` passed;
   * `final` resolves when every master answered or `waitMs` passed. Masters that had not answered by then
   * are "pending".
   */
  send(
    script: Script,
    numKeys: number,
    argv: readonly string[],
    waitMs: number,
    decide?: (outcomes: readonly Outcome[]) => boolean,
    only?: (i: number) => boolean,
  ): { decided: Promise<Outcome[]>; final: Promise<Outcome[]> } {
    const outcomes = new Array<Outcome>(this.masters.length);
    let open = 0;
    let resolveDecided!: (outcomes: Outcome[]) => void;
    let resolveFinal!: (outcomes: Outcome[]) => void;
    const decided = new Promise<Outcome[]>((resolve) => {
      resolveDecided = resolve;
    });
    const final = new Promise<Outcome[]>((resolve) => {
      resolveFinal = resolve;
    });
    let isDecided = false;
    let isFinal = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const finish = () => {
      if (isFinal) return;
      isFinal = true;
      if (timer !== undefined) clearTimeout(timer);
      const snapshot = outcomes.slice();
      if (!isDecided) {
        isDecided = true;
        resolveDecided(snapshot);
      }
      resolveFinal(snapshot);
    };
    const settle = (i: number, outcome: Outcome) => {
      if (isFinal) return;
      outcomes[i] = outcome;
      open--;
      if (open === 0) finish();
      else if (!isDecided && decide?.(outcomes)) {
        isDecided = true;
        resolveDecided(outcomes.slice());
      }
    };
    this.masters.forEach((master, i) => {
      if ((only !== undefined && !only(i)) || !this.#usable(master)) {
        outcomes[i] = SKIPPED;
        return;
      }
      outcomes[i] = PENDING;
      open++;
      this.#call(master, script, numKeys, argv, waitMs).then(
        (value) => settle(i, { kind: "reply", value }),
        (error: unknown) => settle(i, { kind: "error", error }),
      );
    });
    if (open === 0) finish();
    else timer = setTimeout(finish, Math.max(1, waitMs));
    return { decided, final };
  }

  /** {@link Core.send}, waiting for every answer (or `waitMs`). */
  ask(
    script: Script,
    numKeys: number,
    argv: readonly string[],
    waitMs: number,
    only?: (i: number) => boolean,
  ): Promise<Outcome[]> {
    return this.send(script, numKeys, argv, waitMs, undefined, only).final;
  }

  /** Describes the masters that did not answer an attempt, for error messages. */
  describeFailures(outcomes: readonly Outcome[]): string {
    const parts: string[] = [];
    outcomes.forEach((outcome, i) => {
      const master = this.masters[i]!;
      if (outcome.kind === "skipped") {
        parts.push(`${master.label}: not connected${master.lastError ? ` (${master.lastError})` : ""}`);
      } else if (outcome.kind === "pending") {
        parts.push(`${master.label}: no reply within ${this.settings.masterTimeoutMs} ms`);
      } else if (outcome.kind === "error") {
        parts.push(`${master.label}: ${safeError(outcome.error, master.secrets).message}`);
      }
    });
    return parts.join("; ");
  }

  /** Registers a request's intents everywhere without waiting for the replies (see protocol step 2). */
  intend(request: RedisRequest): void {
    const argv = [
      ...request.keys,
      request.token,
      request.modes,
      request.prio,
      String(this.settings.intentTtlMs),
    ];
    this.track(this.ask(INTEND, request.keys.length, argv, this.settings.masterTimeoutMs));
  }

  /**
   * Runs RELEASE for a request (on the masters `only` picks, default all) and waits for the replies,
   * at most `masterTimeoutMs`. Never rejects: what a master fails to release expires with the TTL.
   */
  release(
    request: RedisRequest,
    fence: bigint | undefined,
    what: "all" | "locks" | "intents",
    only?: (i: number) => boolean,
  ): Promise<Outcome[]> {
    const argv = [
      ...request.keys,
      request.token,
      request.modes,
      fence === undefined ? "0" : fence.toString(),
      what,
    ];
    return this.ask(RELEASE, request.keys.length, argv, this.settings.masterTimeoutMs, only);
  }

  /**
   * Protocol steps 3–5: attempts until granted or given up. `timeoutMs` is what is left of the caller's
   * timeout (`reportedTimeoutMs` is the caller's own, for the message); `mayHaveIntents` is true when
   * intents were registered while the request waited locally.
   */
  async acquire(
    request: RedisRequest,
    timeoutMs: number | undefined,
    reportedTimeoutMs: number | undefined,
    signal: AbortSignal | undefined,
    mayHaveIntents: boolean,
  ): Promise<Grant> {
    const { settings, quorum } = this;
    const n = this.masters.length;
    const startedAt = performance.now();
    const deadline = timeoutMs === undefined ? Infinity : startedAt + timeoutMs;
    // A try-lock (no wait allowed) leaves no intents behind: nobody would refresh or remove them.
    const willRetry = timeoutMs !== 0 && settings.retryCount > 0;
    const argv = [
      ...request.keys,
      request.token,
      String(settings.ttlMs),
      request.modes,
      request.prio,
      willRetry ? String(settings.intentTtlMs) : "0",
    ];
    const validFor = settings.ttlMs - settings.driftMs;
    let intents = mayHaveIntents;
    let unavailableSince: number | undefined;
    const giveUp = async (error: LockError): Promise<never> => {
      if (intents) await this.release(request, undefined, "all");
      throw error;
    };
    for (let attempt = 0; ; attempt++) {
      if (this.closed) return giveUp(synchronizerClosedError(settings.name));
      if (signal?.aborted) return giveUp(lockAbortedError(request.set.keys, signal.reason));
      const attemptStart = performance.now();
      const wallStart = Date.now();
      const { decided, final } = this.send(
        ACQUIRE,
        request.keys.length,
        argv,
        Math.min(settings.masterTimeoutMs, validFor),
        // Decided once a majority granted, or once too few masters are left to make one.
        (list) => {
          let yes = 0;
          let open = 0;
          for (const o of list) {
            if (o.kind === "pending") open++;
            else if (isGrant(o)) yes++;
          }
          return yes >= quorum || yes + open < quorum;
        },
      );
      const outcomes = await decided;
      let granted = 0;
      let refused = 0;
      let unsure = 0;
      let fence = 0n;
      let marked = false;
      for (const outcome of outcomes) {
        if (isGrant(outcome)) {
          granted++;
          // "<fence>" or "<fence>m": the granting master holds a journal mark on some key of the set.
          const text = outcome.value;
          const hasMark = text.endsWith("m");
          if (hasMark) marked = true;
          const value = BigInt(hasMark ? text.slice(0, -1) : text);
          if (value > fence) fence = value;
        } else if (outcome.kind === "reply") {
          refused++;
        } else if (outcome.kind !== "skipped") {
          unsure++;
        }
      }
      // A refusal stores intents (unless this is a try-lock); a master that did not answer may have, too.
      if (willRetry && refused > 0) intents = true;
      if (granted >= quorum && performance.now() - attemptStart < validFor) {
        if (willRetry && granted < n) {
          // The masters that did not grant when the quorum was reached may still refuse (and store
          // intents): once they all answered, drop the intents where they did not grant. A late grant
          // stays, as part of the lease.
          this.track(
            final.then((list) => {
              if (intents || list.some((o) => o.kind !== "skipped" && !isGrant(o))) {
                return this.release(request, undefined, "intents", (i) => !isGrant(list[i]!));
              }
              return undefined;
            }),
          );
        }
        if (this.closed || signal?.aborted) {
          await this.release(request, undefined, "all");
          if (this.closed) throw synchronizerClosedError(settings.name);
          throw lockAbortedError(request.set.keys, signal?.reason);
        }
        // Marks are written to every reachable master (at least a majority) and this grant came from a
        // majority, so the two share a master: a mark that exists is seen here (unless a master restarted
        // empty since; see docs/redis-synchronizer.md).
        return { fence, marked, monoDeadline: attemptStart + validFor, wallDeadline: wallStart + validFor };
      }
      if (willRetry && unsure > 0) intents = true;
      // Failed: free what this attempt may have taken before trying again (a late grant too: RELEASE
      // follows ACQUIRE on each connection). The intents stay: the request is still waiting. Masters that
      // refused hold nothing of it, since a script takes all or nothing.
      if (granted > 0 || unsure > 0) {
        await this.release(request, undefined, "locks", (i) => {
          const o = outcomes[i]!;
          return isGrant(o) || o.kind === "pending" || o.kind === "error";
        });
      }
      const now = performance.now();
      const outOfTime = now >= deadline || attempt >= settings.retryCount;
      if (granted + refused < quorum) {
        unavailableSince ??= attemptStart;
        if (outOfTime || now - unavailableSince >= settings.quorumTimeoutMs) {
          return giveUp(this.#unavailableError(request, now - unavailableSince, outcomes));
        }
      } else {
        unavailableSince = undefined;
      }
      if (now >= deadline) {
        return giveUp(lockTimeoutError(request.set.keys, Math.round(reportedTimeoutMs ?? now - startedAt)));
      }
      if (outOfTime) {
        return giveUp(
          new LockError(
            "ERR_LOCK_TIMEOUT",
            `gave up after ${attempt + 1} attempt${attempt === 0 ? "" : "s"} (retryCount ${settings.retryCount}) ` +
              `to lock ${describeKeys(request.set.keys)}: another holder kept a conflicting lock. Nothing is ` +
              "held. Retry later, or raise retryCount or timeoutMs.",
          ),
        );
      }
      const delay = settings.retryDelayMs + Math.random() * settings.retryJitterMs;
      await pause(Math.min(delay, deadline - now), [signal, this.closeController.signal]);
    }
  }

  #unavailableError(request: RedisRequest, forMs: number, outcomes: readonly Outcome[]): LockError {
    const n = this.masters.length;
    return new LockError(
      "ERR_QUORUM_UNAVAILABLE",
      `could not reach a majority (${this.quorum} of ${n}) of the Redis masters for ${Math.round(forMs)} ms ` +
        `while locking ${describeKeys(request.set.keys)}: ${this.describeFailures(outcomes)}. Nothing is ` +
        "held. Bring the masters back (or fix the network) and retry.",
    );
  }
}

/**
 * An ACQUIRE reply that granted the lock: the fence as a decimal string, with "m" appended when a key
 * carries a journal mark (a refusal is the integer 0).
 */
function isGrant(outcome: Outcome): outcome is { readonly kind: "reply"; readonly value: string } {
  return outcome.kind === "reply" && typeof outcome.value === "string";
}

// ---------------------------------------------------------------------------------------------------
// Leases
// ---------------------------------------------------------------------------------------------------

/**
 * A lease granted by a {@link RedisSynchronizer}. Besides the {@link Lease} contract:
 * - `fence` is the lease's fencing token (a bigint), larger than the fence of every earlier holder of any
 *   of its keys (see the module notes); undefined only for the empty key set;
 * - `signal` aborts with a `LeaseLostError` when the lease cannot be kept (extension refused by a
 *   majority, validity ran out, synchronizer closed); reading it also checks the deadline against the
 *   clocks, so a process that was paused past its deadline sees it aborted at once;
 * - `extend()` renews it by hand (automatic unless `autoExtend: false`).
 */
export interface RedisLease extends Lease {
  /** The fencing token: larger than any earlier holder's of these keys; undefined for the empty set. */
  readonly fence: bigint | undefined;
  /**
   * "marked" when a granting master holds a journal mark on any key of the lease (set by `markJournal`
   * of an earlier holder and not cleared: it may have crashed with a journal entry naming the key), else
   * "clean". Checked inside the ACQUIRE script, so it costs no extra round trip.
   */
  readonly journalHint: "clean" | "marked";
  /**
   * Sets a mark without TTL on each exclusive key of the lease, on every reachable master (at least a
   * majority). It outlives release, expiry and a crash of this process. Throws `LeaseLostError` when the
   * lease is no longer held, `LockError` `ERR_QUORUM_UNAVAILABLE` when fewer than a majority took it.
   */
  markJournal(): Promise<void>;
  /**
   * Deletes the mark of each exclusive key of the lease (whoever set it), on every reachable master.
   * Call it once no pending journal entry names these keys. Never rejects: a mark left on a master that
   * did not answer only makes a later holder look at the journal.
   */
  clearJournal(): Promise<void>;
  /**
   * Renews the lease on a majority of masters for another TTL. Throws `LeaseLostError` if it was lost
   * or cannot be renewed before its deadline; the signal is then aborted too. Extending a released lease
   * throws `LeaseLostError` as well.
   */
  extend(): Promise<void>;
}

const HELD = 0;
const LOST = 1;
const RELEASED = 2;

class RedisLeaseImpl implements RedisLease {
  readonly keys: readonly string[];
  readonly mode: LockMode;
  readonly fence: bigint | undefined;
  readonly journalHint: "clean" | "marked";
  readonly #modes: readonly LockMode[];
  readonly #forget: (lease: RedisLeaseImpl) => void;
  readonly #core: Core;
  readonly #local: Lease;
  readonly #request: RedisRequest | undefined;
  readonly #controller = new AbortController();
  #state: typeof HELD | typeof LOST | typeof RELEASED = HELD;
  #monoDeadline: number;
  #wallDeadline: number;
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  #extendTimer: ReturnType<typeof setTimeout> | undefined;
  #extending: Promise<boolean> | undefined;
  #releasing: Promise<void> | undefined;

  constructor(
    forget: (lease: RedisLeaseImpl) => void,
    core: Core,
    set: ResolvedLockSet,
    local: Lease,
    request: RedisRequest | undefined,
    grant: Grant | undefined,
  ) {
    this.#forget = forget;
    this.#core = core;
    this.keys = set.keys;
    this.#modes = set.modes;
    this.mode = set.mode;
    this.#local = local;
    this.#request = request;
    this.fence = grant?.fence;
    // The empty set names no key, so no entry can concern it.
    this.journalHint = grant?.marked === true ? "marked" : "clean";
    this.#monoDeadline = grant?.monoDeadline ?? Infinity;
    this.#wallDeadline = grant?.wallDeadline ?? Infinity;
    if (grant !== undefined) this.#schedule();
  }

  get signal(): AbortSignal {
    // Timers fire late after a pause (SIGSTOP, a long GC, a suspended VM), so check the clocks here too:
    // this is what the transaction layer reads just before it writes.
    if (this.#state === HELD && this.#expired()) this.#lose(this.#expiredMessage());
    return this.#controller.signal;
  }

  modeOf(key: string): LockMode | undefined {
    return modeOfSorted(this.keys, this.#modes, key);
  }

  release(): Promise<void> {
    this.#releasing ??= this.#release();
    return this.#releasing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }

  async extend(): Promise<void> {
    if (this.#state === HELD && (await this.#extend())) return;
    const reason = this.#controller.signal.reason;
    throw reason instanceof LeaseLostError
      ? reason
      : new LeaseLostError(`the lease on ${describeKeys(this.keys)} was released; it cannot be extended`);
  }

  async markJournal(): Promise<void> {
    const request = this.#request;
    if (request === undefined || !request.modes.includes("x")) return;
    if (this.#state !== HELD || this.#expired()) {
      if (this.#state === HELD) this.#lose(this.#expiredMessage());
      const reason = this.#controller.signal.reason;
      throw reason instanceof LeaseLostError
        ? reason
        : new LeaseLostError(
            `the lease on ${describeKeys(this.keys)} was released; it cannot mark a journal`,
          );
    }
    const core = this.#core;
    // Every reachable master, not just a majority: the more masters carry the mark, the fewer restarts
    // without persistence can lose it.
    const outcomes = await core.ask(
      MARK,
      request.keys.length,
      [...request.keys, request.token, request.modes],
      core.settings.masterTimeoutMs,
    );
    const marked = outcomes.filter((o) => o.kind === "reply").length;
    if (marked < core.quorum) {
      throw new LockError(
        "ERR_QUORUM_UNAVAILABLE",
        `could not mark the journal of ${describeKeys(this.keys)} on a majority (${core.quorum} of ` +
          `${core.masters.length}) of the Redis masters: ${core.describeFailures(outcomes)}. Nothing was ` +
          "written to the store; retry when the masters are back.",
      );
    }
  }

  async clearJournal(): Promise<void> {
    const request = this.#request;
    if (request === undefined || !request.modes.includes("x")) return;
    // Best effort on every master: a mark left behind only makes a later holder list the journal.
    await this.#core.ask(
      CLEAR,
      request.keys.length,
      [...request.keys, request.token, request.modes],
      this.#core.settings.masterTimeoutMs,
    );
  }

  /** Called by `close()`: the lease is lost (signal aborted) and released in Redis. */
  revoke(): Promise<void> {
    if (this.#state === HELD) {
      this.#lose(
        `the lease on ${describeKeys(this.keys)} was revoked because the ${this.#core.settings.name} was ` +
          "closed; do not commit work done under it",
        synchronizerClosedError(this.#core.settings.name),
      );
    }
    return this.release();
  }

  #expired(): boolean {
    return performance.now() >= this.#monoDeadline || Date.now() >= this.#wallDeadline;
  }

  #expiredMessage(): string {
    return (
      `the Redis lease on ${describeKeys(this.keys)} expired: its validity ran out before it was extended ` +
      "(the process was paused, or the masters could not be reached). Another holder may have the keys " +
      "now; do not commit work done under it."
    );
  }

  #lose(message: string, cause?: unknown): void {
    if (this.#state !== HELD) return;
    this.#state = LOST;
    this.#clearTimers();
    // The keys stay held in Redis (if they are) until `release`: the work under the lease may still be
    // running, and holding what is left can only keep others out longer, never let them in sooner.
    this.#controller.abort(new LeaseLostError(message, cause === undefined ? undefined : { cause }));
  }

  #clearTimers(): void {
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    if (this.#extendTimer !== undefined) clearTimeout(this.#extendTimer);
    this.#deadlineTimer = undefined;
    this.#extendTimer = undefined;
  }

  #schedule(): void {
    this.#clearTimers();
    const { settings } = this.#core;
    const left = this.#monoDeadline - performance.now();
    // unref: a forgotten lease must not keep the process alive; the server-side TTL frees it anyway.
    this.#deadlineTimer = setTimeout(
      () => {
        if (this.#state === HELD) this.#lose(this.#expiredMessage());
      },
      Math.max(0, left),
    );
    this.#deadlineTimer.unref();
    if (settings.autoExtend) {
      // Renew when a third of the TTL is left: time for a few retries if a master is slow.
      this.#extendTimer = setTimeout(
        () => {
          this.#extendTimer = undefined;
          this.#core.track(this.#extend());
        },
        Math.max(0, left - settings.ttlMs / 3),
      );
      this.#extendTimer.unref();
    }
  }

  #extend(): Promise<boolean> {
    this.#extending ??= this.#runExtend().finally(() => {
      this.#extending = undefined;
    });
    return this.#extending;
  }

  async #runExtend(): Promise<boolean> {
    const core = this.#core;
    const { settings, quorum } = core;
    const request = this.#request;
    if (request === undefined) return this.#state === HELD;
    const n = core.masters.length;
    const argv = [...request.keys, request.token, String(settings.ttlMs), request.modes];
    const all = this.keys.length;
    for (;;) {
      if (this.#state !== HELD) return false;
      if (this.#expired()) {
        this.#lose(this.#expiredMessage());
        return false;
      }
      const start = performance.now();
      const wallStart = Date.now();
      const outcomes = await core.send(
        EXTEND,
        request.keys.length,
        argv,
        Math.min(settings.masterTimeoutMs, this.#monoDeadline - start),
        (list) => {
          let yes = 0;
          let no = 0;
          for (const o of list) {
            if (o.kind !== "reply") continue;
            if (o.value === all) yes++;
            else no++;
          }
          return yes >= quorum || no > n - quorum;
        },
      ).decided;
      if (this.#state !== HELD) return false;
      let yes = 0;
      let no = 0;
      for (const o of outcomes) {
        if (o.kind !== "reply") continue;
        if (o.value === all) yes++;
        else no++;
      }
      if (this.#expired()) {
        this.#lose(this.#expiredMessage());
        return false;
      }
      if (yes >= quorum) {
        const validFor = settings.ttlMs - settings.driftMs;
        this.#monoDeadline = start + validFor;
        this.#wallDeadline = wallStart + validFor;
        this.#schedule();
        return true;
      }
      if (no > n - quorum) {
        this.#lose(
          `the Redis lease on ${describeKeys(this.keys)} was lost: only ${yes} of ${n} masters still hold ` +
            `all of its keys, and a majority (${quorum}) is needed (the keys expired or a master restarted ` +
            "empty, and someone else took them). Do not commit work done under it.",
        );
        return false;
      }
      // Too few answers to decide: a master is slow or down. Try again until the deadline.
      await pause(Math.min(settings.retryDelayMs + Math.random() * settings.retryJitterMs, 50), [
        core.closeController.signal,
      ]);
    }
  }

  async #release(): Promise<void> {
    const wasHeld = this.#state !== RELEASED;
    this.#state = RELEASED;
    this.#clearTimers();
    this.#forget(this);
    try {
      // Release even a lost lease: what is still held in Redis would otherwise block others until the TTL.
      if (wasHeld && this.#request !== undefined)
        await this.#core.release(this.#request, this.fence, "locks");
    } finally {
      await this.#local.release();
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The synchronizer
// ---------------------------------------------------------------------------------------------------

/**
 * Shared/exclusive locks on key sets through Redis, for processes and hosts that share nothing else:
 * Redlock over 1, 3 or 5 independent masters, with one atomic Lua script per master per request (see the
 * protocol at the top of this module and docs/redis-synchronizer.md).
 *
 * Guarantees, as long as a majority of masters is up and clocks advance at about the same rate
 * (drift within `driftFactor`):
 * - all-or-nothing: a lease holds its whole set on a majority of masters; a failed, timed-out, aborted
 *   or refused acquisition holds nothing (keys a late reply took are released before the call settles,
 *   or expire within one TTL when a master cannot be reached);
 * - shared locks coexist; an exclusive lock excludes every other holder of its key, in this process
 *   (local table in front) and in every other one;
 * - no writer starvation and no deadlock: waiting requests leave intents in Redis, ordered by
 *   (priority, token), and a request waits only for holders and for older conflicting waiters;
 * - live: a crashed holder blocks others for at most `ttlMs`, a crashed waiter for at most `ttlMs`;
 * - leases carry a fencing token (`fence`) and a `signal` that aborts as soon as the lease cannot be
 *   kept; both are needed for safety against process pauses (see the docs).
 *
 * Acquisitions reject (never throw) with `LockError`: `ERR_LOCK_TIMEOUT` after `timeoutMs` or
 * `retryCount` retries, `ERR_LOCK_ABORTED` when the signal aborts, `ERR_SYNCHRONIZER_CLOSED` after
 * `close()`, and `ERR_QUORUM_UNAVAILABLE` when fewer than a majority of masters answer for
 * `quorumTimeoutMs`; with `InvalidArgumentError` for a bad mode, key list or timeout. The constructor
 * throws `InvalidArgumentError` for bad options. No message ever contains a URL or password.
 */
export class RedisSynchronizer implements Synchronizer {
  readonly #core: Core;
  readonly #local: InProcessSynchronizer;
  readonly #leases = new Set<RedisLeaseImpl>();
  readonly #pending = new Set<Promise<Lease>>();
  readonly #forgetLease = (lease: RedisLeaseImpl) => {
    this.#leases.delete(lease);
  };
  #closing: Promise<void> | undefined;

  /** @throws InvalidArgumentError for bad options (no masters, an even count, duplicates, bad numbers). */
  constructor(options: RedisSynchronizerOptions) {
    if (typeof options !== "object" || options === null) invalid("options with masters are required");
    const settings = settingsOf(options);
    const specs = options.masters;
    if (!Array.isArray(specs) || specs.length === 0) {
      invalid("masters must be a non-empty list of redis:// URLs or ioredis clients");
    }
    if (specs.length % 2 === 0 || specs.length > 9) {
      invalid(
        `use an odd number of masters (1, 3 or 5), got ${specs.length}: an even count tolerates no more ` +
          "failures than the odd count below it",
      );
    }
    const seen = new Map<unknown, number>();
    specs.forEach((spec, i) => {
      for (const id of [spec, serverOf(spec)]) {
        if (id === undefined) continue;
        const first = seen.get(id);
        if (first !== undefined) {
          invalid(
            `masters ${first + 1} and ${i + 1} are the same Redis server; Redlock needs independent masters`,
          );
        }
        seen.set(id, i);
      }
      if (spec instanceof Cluster && !hasHashTag(settings.keyPrefix)) {
        invalid(
          `master ${i + 1} is a Redis Cluster, so keyPrefix must contain a hash tag such as "{zarr-tx}:" ` +
            "(every key of one script must live in one slot)",
        );
      }
    });
    const masters = specs.map((spec, i) => openMaster(spec, i, specs.length));
    this.#core = new Core(settings, masters);
    this.#local = new InProcessSynchronizer({ name: settings.name });
  }

  /** How many masters must agree: a majority. */
  get quorum(): number {
    return this.#core.quorum;
  }

  /** True once {@link RedisSynchronizer.close} was called. */
  get closed(): boolean {
    return this.#core.closed;
  }

  /**
   * Locks every key in one mode, all-or-nothing; same as `acquireSet({ [mode]: keys }, options)`.
   * Rejects like {@link RedisSynchronizer.acquireSet}.
   */
  acquire(keys: Iterable<string>, mode: LockMode, options?: AcquireOptions): Promise<RedisLease> {
    if (mode === "exclusive") return this.acquireSet({ exclusive: keys }, options);
    if (mode === "shared") return this.acquireSet({ shared: keys }, options);
    return Promise.reject(
      new InvalidArgumentError(`lock mode must be "shared" or "exclusive", got ${JSON.stringify(mode)}`),
    );
  }

  /**
   * Locks keys in mixed modes at once (a key in both lists is exclusive), all-or-nothing, first in the
   * local table and then on a majority of masters. An empty set is granted at once.
   *
   * Rejects with `LockError` `ERR_LOCK_TIMEOUT`, `ERR_LOCK_ABORTED`, `ERR_SYNCHRONIZER_CLOSED` or
   * `ERR_QUORUM_UNAVAILABLE`, or `InvalidArgumentError`; a rejected acquisition holds nothing.
   */
  acquireSet(locks: LockSet, options?: AcquireOptions): Promise<RedisLease> {
    const pending = this.#acquire(locks, options ?? {});
    this.#pending.add(pending);
    pending.then(
      () => this.#pending.delete(pending),
      () => this.#pending.delete(pending),
    );
    return pending;
  }

  async #acquire(locks: LockSet, options: AcquireOptions): Promise<RedisLease> {
    const core = this.#core;
    if (core.closed) throw synchronizerClosedError(core.settings.name);
    const set = resolveLockSet(locks);
    const { signal, timeoutMs } = options;
    const started = performance.now();
    const request = set.keys.length > 0 ? core.request(set) : undefined;
    const localRequest = this.#local.acquireSet(splitModes(set), options);
    let local: Lease;
    // Granted at once locally (the usual case) or queued behind another task of this process?
    const first = await Promise.race([localRequest, NOT_YET_PROMISE]);
    let waitedLocally = false;
    if (first !== NOT_YET) {
      local = first;
    } else {
      waitedLocally = request !== undefined;
      // Queued: keep intents in Redis while waiting here, so other processes see this request waiting.
      let refresh: ReturnType<typeof setInterval> | undefined;
      if (request !== undefined) {
        core.intend(request);
        refresh = setInterval(() => core.intend(request), core.settings.intentTtlMs / 3);
        refresh.unref();
      }
      try {
        local = await localRequest;
      } catch (error) {
        if (request !== undefined) await core.release(request, undefined, "all");
        throw error;
      } finally {
        clearInterval(refresh);
      }
    }
    if (request === undefined) {
      return new RedisLeaseImpl(this.#forgetLease, core, set, local, undefined, undefined);
    }
    try {
      const left =
        timeoutMs === undefined ? undefined : Math.max(0, timeoutMs - (performance.now() - started));
      const grant = await core.acquire(request, left, timeoutMs, signal, waitedLocally);
      const lease = new RedisLeaseImpl(this.#forgetLease, core, set, local, request, grant);
      if (core.closed) {
        // close() ran between the grant and here, after it collected the held leases.
        await lease.revoke();
        throw synchronizerClosedError(core.settings.name);
      }
      this.#leases.add(lease);
      return lease;
    } catch (error) {
      await local.release();
      throw error;
    }
  }

  /**
   * Closes the synchronizer: pending acquisitions reject with `LockError` `ERR_SYNCHRONIZER_CLOSED` (and
   * leave nothing in Redis), held leases are revoked (their signals abort with a `LeaseLostError`) and
   * released in Redis, later acquisitions reject with `ERR_SYNCHRONIZER_CLOSED`, and the connections made
   * from URLs are closed (clients passed in stay open). Idempotent; never rejects.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const core = this.#core;
    core.closeController.abort();
    // Local waiters reject now; local leases are revoked (their Redis side is handled below).
    await this.#local.close();
    await Promise.all([...this.#leases].map((lease) => lease.revoke()));
    await Promise.allSettled([...this.#pending]);
    while (core.background.size > 0) await Promise.allSettled([...core.background]);
    for (const master of core.masters) {
      master.client.off("ready", master.onReady);
      if (master.owned) {
        // Everything of ours has settled, so nothing is lost by not waiting for QUIT's reply (which would
        // hang on a master that is down). The error listener stays: a closing socket may still report.
        master.client.disconnect();
      }
    }
  }
}

/** The local table takes the same set: split by mode, already sorted (so sorting again is cheap). */
function splitModes(set: ResolvedLockSet): LockSet {
  if (set.keys.length === 0 || !set.modes.includes(set.mode === "exclusive" ? "shared" : "exclusive")) {
    return set.mode === "exclusive" ? { exclusive: set.keys } : { shared: set.keys };
  }
  const shared: string[] = [];
  const exclusive: string[] = [];
  set.keys.forEach((key, i) => {
    (set.modes[i] === "exclusive" ? exclusive : shared).push(key);
  });
  return { shared, exclusive };
}
