/**
 * The machinery of the crash tests, store-generic (filesystem in test/crash.fs.test.ts, S3 in
 * test/crash.s3.test.ts): it starts writer, reader, recoverer and locker processes
 * (test/crash-child.ts), SIGKILLs them at random times or lets them kill themselves at a protocol step
 * (`ZARR_TX_CRASH_AT`), recovers, and checks the outcome against the model of test/crash-model.ts.
 *
 * After every run it checks the four promises of the crash journal:
 * - every transaction is all-or-nothing, none whose commit resolved is lost, readers saw no
 *   half-applied transaction (the model);
 * - every chunk decodes (`verify()` reports no damage);
 * - no lock is stuck (a fresh process takes every chunk of the array exclusively within a timeout);
 * - nothing is left over (no journal entry, no temp file, after `recover()`).
 */
import { mkdir, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import * as zarr from "zarrita";
import { seededRandom } from "../src/cli/workloads.js";
import {
  type CreateOptions,
  create,
  get,
  listJournalEntries,
  type RecoveryReport,
  recover,
  type Store,
  type Synchronizer,
  slice,
  verify,
  type ZarrTxArray,
} from "../src/index.js";
import { Child, killAll } from "./child-process.js";
import {
  type CrashChildConfig,
  cellsOf,
  openStore,
  openSynchronizer,
  type Rect,
  type StoreConfig,
  type SyncConfig,
} from "./crash-child.js";
import { History, parseReaderLogs, parseWriterLogs, type TxRecord } from "./crash-model.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = join(here, "..");

/**
 * Node arguments that start the crash child and the CLI. `node --import tsx` costs ~0.5 s of CPU per
 * process, and these tests start hundreds, so both are bundled once with esbuild (present through tsx
 * and vitest) into node_modules/.cache, where their bare imports resolve: a child then starts in
 * ~0.15 s. `splitting` keeps the dynamic imports (S3 SDK, Redis) out of the entry, so filesystem
 * children never load them. Without esbuild, both run through tsx. The bundles live in node_modules/.cache
 * so that the external packages resolve.
 */
export interface Bundles {
  readonly child: string[];
  readonly cli: string[];
  /** Removes the bundles. */
  dispose(): Promise<void>;
}

export async function buildBundles(): Promise<Bundles> {
  const out = join(repo, "node_modules", ".cache", "zarr-tx-test", `crash-${process.pid}`);
  try {
    const { build } = await import("esbuild");
    const common = {
      bundle: true,
      platform: "node" as const,
      format: "esm" as const,
      target: "node20",
      // Dependencies are bundled too (a third less CPU per start than resolving them from
      // node_modules), except the native lock module and the lazily loaded S3 and Redis clients.
      external: ["fs-native-extensions", "@aws-sdk/*", "@smithy/*", "ioredis"],
      // CommonJS dependencies inside an ES module bundle still call require().
      banner: {
        js: 'import { createRequire as __zarrTxRequire } from "node:module"; const require = __zarrTxRequire(import.meta.url);',
      },
      splitting: true,
      logLevel: "error" as const,
    };
    await build({ ...common, entryPoints: [join(here, "crash-child.ts")], outdir: join(out, "child") });
    await build({ ...common, entryPoints: [join(repo, "src", "cli", "main.ts")], outdir: join(out, "cli") });
    return {
      child: [join(out, "child", "crash-child.js")],
      cli: [join(out, "cli", "main.js")],
      dispose: () => rm(out, { recursive: true, force: true }),
    };
  } catch {
    const tsx = pathToFileURL(createRequire(import.meta.url).resolve("tsx")).href;
    return {
      child: ["--import", tsx, join(here, "crash-child.ts")],
      cli: ["--import", tsx, join(repo, "src", "cli", "main.ts")],
      dispose: () => rm(out, { recursive: true, force: true }),
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** An array layout under test. Every variant is 2-D int32 with fill value 0. */
export interface Variant {
  readonly name: string;
  readonly options: Omit<CreateOptions, "path">;
}

/** What every variant shares: 16×16 int32 cells, fill value 0. */
const GRID = { shape: [16, 16], dtype: "int32", fillValue: 0 } as const;

export const VARIANTS = {
  /** v3, 8×8 chunks of 2×2, gzip: a chunk torn inside its file would not decode. */
  v3: {
    name: "v3",
    options: {
      ...GRID,
      chunkShape: [2, 2],
      codecs: [{ name: "bytes" }, { name: "gzip", configuration: { level: 1 } }],
    },
  },
  /** v2 as zarr-python 2 writes it (zlib), readable by zarr-python 2.13. */
  v2: {
    name: "v2",
    options: {
      ...GRID,
      zarrFormat: 2,
      chunkShape: [2, 2],
      compressor: { id: "zlib", level: 1 },
      order: "C",
    },
  },
  /** v3 sharded: 4×4 shards of 4×4 cells, inner chunks 2×2, crc32c index. The lock unit is the shard. */
  sharded: {
    name: "sharded",
    options: {
      ...GRID,
      chunkShape: [4, 4],
      codecs: [
        {
          name: "sharding_indexed",
          configuration: {
            chunk_shape: [2, 2],
            codecs: [{ name: "bytes" }],
            index_codecs: [{ name: "bytes" }, { name: "crc32c" }],
            index_location: "end",
          },
        },
      ],
    },
  },
} satisfies Record<string, Variant>;

/** What a run did, for the test's log line. */
export interface RunStats {
  kills: number;
  transactions: number;
  committed: number;
  inFlight: number;
  inFlightCommitted: number;
  snapshots: number;
  recovered: { rolledForward: number; discarded: number; tempFiles: number };
}

/** The runs of {@link CrashRig.randomKills}. */
export interface RandomKillsOptions {
  writers: number;
  readers: number;
  kills: number;
  seed: number;
  maxDelayMs: number;
  cli?: { location: string; extra: readonly string[]; reads: number };
  /** Writers commit without the journal (see `writer`). */
  journal?: boolean;
}

/**
 * What a crash test file shares (test/crash.fs.test.ts, test/crash.s3.test.ts). Called at the top of the
 * file, it builds the bundles (beside whatever `start` starts) before the file's tests, SIGKILLs every
 * child and tears every rig down after each test, removes the work directories and stops everything
 * after the last test, and counts kills over the whole file (logged at the end).
 */
export function crashSuite<K>(options: {
  /** What the log lines begin with ("crash.fs"). */
  label: string;
  /** Where each rig's work directory is made, and its name's prefix. */
  tempParent: string;
  tempPrefix: string;
  /** The store and the synchronizer of a rig whose work directory is `dir`, for the test's `kind`. */
  configure: (dir: string, kind: K) => { store: StoreConfig; sync: SyncConfig };
  /** More set-up before the file's tests (servers), run beside the bundles' build. */
  start?: () => Promise<void>;
  /** Undoes `start` after the file's tests (it must cope with a `start` that failed). */
  stop?: () => Promise<unknown>;
}): CrashSuite<K> {
  let bundles: Bundles | undefined;
  const dirs: string[] = [];
  const rigs: CrashRig[] = [];
  let totalKills = 0;

  beforeAll(async () => {
    [bundles] = await Promise.all([buildBundles(), options.start?.()]);
  });
  afterEach(async () => {
    killAll();
    await Promise.all(rigs.splice(0).map((rig) => rig.tearDown()));
  });
  afterAll(async () => {
    console.log(`${options.label}: ${totalKills} kills in all`);
    await Promise.all([
      ...dirs.map((d) => rm(d, { recursive: true, force: true })),
      bundles?.dispose(),
      options.stop?.(),
    ]);
  });

  const rig = async (variant: Variant, kind: K): Promise<CrashRig> => {
    const dir = await mkdtemp(join(options.tempParent, options.tempPrefix));
    dirs.push(dir);
    const { store, sync } = options.configure(dir, kind);
    const r = new CrashRig(bundles!, store, sync, variant, dir);
    await r.setUp();
    rigs.push(r);
    return r;
  };

  return {
    rig,
    async run(name, variant, kind, body) {
      const startedAt = performance.now();
      const stats = await body(await rig(variant, kind));
      totalKills += stats.kills;
      const seconds = Math.round((performance.now() - startedAt) / 100) / 10;
      console.log(`${options.label} ${name}: ${JSON.stringify({ ...stats, seconds })}`);
      return stats;
    },
    addKills(kills) {
      totalKills += kills;
    },
  };
}

/** A crash test file's rigs (see {@link crashSuite}); `K` is what tells its rigs apart (fsync, locks). */
export interface CrashSuite<K> {
  /** A new rig (its array created), torn down after the test. */
  rig(variant: Variant, kind: K): Promise<CrashRig>;
  /** Runs `body` on a new rig, then logs the stats it returns (and counts their kills). */
  run(name: string, variant: Variant, kind: K, body: (rig: CrashRig) => Promise<RunStats>): Promise<RunStats>;
  /** Counts kills made outside {@link run}. */
  addKills(kills: number): void;
}

/**
 * One array under test, with the store and synchronizer every process of the test uses, and the logs
 * of every writer and reader ever started on it.
 */
export class CrashRig {
  readonly path = "/a";
  readonly #logs: string;
  #nextInstance = 1;
  #store: Store | undefined;
  #synchronizer: Synchronizer | undefined;
  #array: ZarrTxArray | undefined;
  kills = 0;

  constructor(
    readonly bundles: Bundles,
    readonly storeConfig: StoreConfig,
    readonly syncConfig: SyncConfig,
    readonly variant: Variant,
    readonly workDir: string,
  ) {
    this.#logs = join(workDir, "logs");
  }

  /** Creates the array (and the log directory), and opens it in this process. */
  async setUp(): Promise<void> {
    await mkdir(this.#logs, { recursive: true });
    this.#store = await openStore(this.storeConfig);
    this.#synchronizer = await openSynchronizer(this.syncConfig);
    this.#array = await create(this.#store, {
      ...this.variant.options,
      path: this.path,
      synchronizer: this.#synchronizer,
    });
  }

  async tearDown(): Promise<void> {
    await this.#synchronizer?.close();
    const closable = this.#store as { close?: () => Promise<void> } | undefined;
    await closable?.close?.();
  }

  get store(): Store {
    return this.#store!;
  }

  get synchronizer(): Synchronizer {
    return this.#synchronizer!;
  }

  /** The array opened in this (the test's) process, through the shared synchronizer. */
  get array(): ZarrTxArray {
    return this.#array!;
  }

  #spawn(config: CrashChildConfig, env?: Record<string, string>): Child {
    return new Child([...this.bundles.child, JSON.stringify(config)], env);
  }

  #common() {
    return { store: this.storeConfig, sync: this.syncConfig, path: this.path };
  }

  /** Starts a writer with a new instance number (so its values are its own). */
  writer(
    seed: number,
    options: { env?: Record<string, string>; count?: number; first?: Rect; journal?: boolean } = {},
  ): { child: Child; log: string; instance: number } {
    const instance = this.#nextInstance++;
    const log = join(this.#logs, `writer-${instance}.log`);
    const child = this.#spawn(
      {
        ...this.#common(),
        role: "writer",
        instance,
        seed,
        log,
        ...(options.count !== undefined ? { count: options.count } : {}),
        ...(options.first !== undefined ? { first: options.first } : {}),
        ...(options.journal !== undefined ? { journal: options.journal } : {}),
      },
      options.env,
    );
    return { child, log, instance };
  }

  reader(seed: number): Child {
    return this.#spawn({
      ...this.#common(),
      role: "reader",
      seed,
      log: join(this.#logs, `reader-${seed}.log`),
    });
  }

  /** Runs `recover()` in a child; with `crashAt`, the child must die there (SIGKILL). */
  async recoverInChild(crashAt?: string): Promise<RecoveryReport | undefined> {
    const child = this.#spawn(
      { ...this.#common(), role: "recoverer" },
      crashAt === undefined ? undefined : { ZARR_TX_CRASH_AT: crashAt },
    );
    const { code, signal, stderr } = await child.exited;
    if (crashAt !== undefined) {
      expect(signal, `recoverer armed with ${crashAt} should die there:\n${stderr}`).toBe("SIGKILL");
      this.kills++;
      return undefined;
    }
    expect(code, stderr).toBe(0);
    return (child.messages.find((m) => m.event === "report") as unknown as { report: RecoveryReport }).report;
  }

  /** Every transaction the writers logged, and every snapshot the readers took. */
  async logs(): Promise<{ txs: Map<number, TxRecord>; snapshots: ReturnType<typeof parseReaderLogs> }> {
    const names = await readdir(this.#logs);
    const read = (prefix: string) =>
      Promise.all(
        names.filter((n) => n.startsWith(prefix)).map((n) => readFile(join(this.#logs, n), "utf8")),
      );
    return { txs: parseWriterLogs(await read("writer-")), snapshots: parseReaderLogs(await read("reader-")) };
  }

  /** The cells of a rectangle, read through a zarr-tx transaction (which recovers what it touches first). */
  async read(rect?: Rect): Promise<number[]> {
    const selection = rect === undefined ? null : [slice(rect[0], rect[1]), slice(rect[2], rect[3])];
    return cellsOf((await get(this.array, selection)) as never);
  }

  /** The cells of a rectangle as plain zarrita reads the stored objects: no locks, no recovery. */
  async readPlain(rect: Rect): Promise<number[]> {
    const location = zarr.root(this.store as never).resolve(this.path.slice(1));
    const array =
      this.variant.options.zarrFormat === 2
        ? await zarr.open.v2(location, { kind: "array" })
        : await zarr.open.v3(location, { kind: "array" });
    const chunk = await zarr.get(array, [zarr.slice(rect[0], rect[1]), zarr.slice(rect[2], rect[3])]);
    return cellsOf(chunk as never);
  }

  /**
   * A `zarr-tx get` of a rectangle in another process (the CLI, through the same locks). Undefined when
   * it refused with `ERR_RECOVERY_NEEDED`: `get` opens the store read-only, so it cannot recover a dead
   * writer's entry on its chunks, and refuses rather than show a half-applied transaction.
   */
  async cliRead(location: string, extra: readonly string[], rect: Rect): Promise<number[] | undefined> {
    const child = new Child([
      ...this.bundles.cli,
      "get",
      location,
      "-p",
      this.path,
      "--sel",
      `${rect[0]}:${rect[1]},${rect[2]}:${rect[3]}`,
      "--json",
      ...extra,
    ]);
    let stdout = "";
    child.process.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    const { code, stderr } = await child.exited;
    const json = JSON.parse(stdout) as { data: number[][]; error?: { code: string } };
    if (code === 1 && json.error?.code === "ERR_RECOVERY_NEEDED") return undefined;
    expect(code, `zarr-tx get failed:\n${stdout}\n${stderr}`).toBe(0);
    return json.data.flat();
  }

  /**
   * Random kills: `writers` writer slots, each running a writer until it is SIGKILLed a random time (up
   * to `maxDelayMs`) after its first commit, then starting a new one, until `kills` writers died that way.
   * `readers` reader processes, and (with `cli`) `zarr-tx get` processes one after another, read random
   * rectangles meanwhile. Returns the snapshots the CLI took (the readers log theirs).
   */
  async randomKills(options: RandomKillsOptions): Promise<{ rect: Rect; cells: number[] }[]> {
    const random = seededRandom(options.seed);
    const seed = () => Math.floor(random() * 2 ** 31);
    let killed = 0;
    const readers = Array.from({ length: options.readers }, () => this.reader(seed()));
    let done = false;
    const slot = async (): Promise<void> => {
      while (killed < options.kills) {
        const { child } = this.writer(seed(), options.journal === false ? { journal: false } : {});
        // Mostly among warm transactions; one kill in four in the first one, which often recovers the
        // entries of writers killed before (a crash inside recovery by a transaction).
        await child.next(random() < 0.25 ? "ready" : "warm");
        await sleep(random() * options.maxDelayMs);
        if (!child.running) {
          const { code, stderr } = await child.exited;
          throw new Error(`a writer stopped on its own (exit ${code}):\n${stderr}`);
        }
        if (await child.kill()) killed++;
      }
    };
    const cliSnapshots: { rect: Rect; cells: number[] }[] = [];
    const cliLoop = async (): Promise<void> => {
      if (options.cli === undefined) return;
      const [rows, cols] = this.variant.options.shape as [number, number];
      // One process at a time, a bounded number: each start costs a few hundred ms of CPU.
      while (!done && cliSnapshots.length < options.cli.reads) {
        const r0 = Math.floor(random() * rows);
        const c0 = Math.floor(random() * cols);
        const rect: Rect = [
          r0,
          r0 + 1 + Math.floor(random() * (rows - r0)),
          c0,
          c0 + 1 + Math.floor(random() * (cols - c0)),
        ];
        const cells = await this.cliRead(options.cli.location, options.cli.extra, rect);
        if (cells !== undefined) cliSnapshots.push({ rect, cells });
      }
    };
    const cli = cliLoop();
    let failure: unknown;
    try {
      await Promise.all(Array.from({ length: options.writers }, slot));
    } catch (error) {
      failure = error;
    }
    done = true;
    await cli;
    for (const reader of readers) {
      if (!reader.running) {
        const { code, stderr } = await reader.exited;
        failure ??= new Error(`a reader stopped on its own (exit ${code}):\n${stderr}`);
      }
      await reader.kill();
    }
    if (failure !== undefined) throw failure;
    this.kills += killed;
    return cliSnapshots;
  }

  /**
   * {@link randomKills}, then {@link recoverAndCheck} (over the CLI's snapshots too): at least
   * `options.kills` kills, and with `cli`, at least one `zarr-tx get` ran.
   */
  async randomKillsChecked(options: RandomKillsOptions, mode: "recover" | "transaction"): Promise<RunStats> {
    const cliSnapshots = await this.randomKills(options);
    if (options.cli !== undefined) {
      expect(cliSnapshots.length, "zarr-tx get processes ran during the kills").toBeGreaterThan(0);
    }
    const stats = await this.recoverAndCheck(mode, cliSnapshots);
    expect(stats.kills).toBeGreaterThanOrEqual(options.kills);
    return stats;
  }

  /**
   * Deterministic kills at protocol steps: for each `point@n`, a writer dies at its n-th transaction's
   * `point`. Every point here comes after the commit record, so the victim must be rolled forward; a
   * plain read of one cell of its rectangle, in this process, must do it by itself (the entry names
   * chunks that read does not lock: the transaction plans again with them, exclusively).
   */
  async crashAtPoints(points: readonly string[], nths: readonly number[], seed: number): Promise<void> {
    for (const point of points) {
      for (const n of nths) {
        const { child, log } = this.writer(seed + n, {
          env: { ZARR_TX_CRASH_AT: `${point}@${n}` },
          count: n + 3,
        });
        const { signal, stderr } = await child.exited;
        expect(signal, `a writer armed with ${point}@${n} should die there:\n${stderr}`).toBe("SIGKILL");
        this.kills++;
        const victim = lastUnresolved(parseWriterLogs([await readFile(log, "utf8")]));
        expect(victim, `${point}@${n}: the victim logged its begin`).toBeDefined();
        const entries = await listJournalEntries(this.store);
        expect(
          entries.map((e) => e.record?.state),
          `${point}@${n}: one committed entry`,
        ).toEqual(["commit"]);
        const [r0, , c0] = victim!.rect;
        expect(await this.read([r0, r0 + 1, c0, c0 + 1]), `${point}@${n}: rolled forward by a read`).toEqual([
          victim!.value,
        ]);
        expect(await listJournalEntries(this.store)).toEqual([]);
        const cells = await this.read(victim!.rect);
        expect(new Set(cells), `${point}@${n}: the whole rectangle`).toEqual(new Set([victim!.value]));
      }
    }
  }

  /** {@link crashAtPoints}, then {@link recoverAndCheck} through `recover()`: one kill per point and nth. */
  async crashAtPointsChecked(
    points: readonly string[],
    nths: readonly number[],
    seed: number,
  ): Promise<RunStats> {
    await this.crashAtPoints(points, nths, seed);
    const stats = await this.recoverAndCheck("recover");
    expect(stats.kills).toBe(points.length * nths.length);
    return stats;
  }

  /**
   * Kills recovery itself: a writer dies right after its commit record (nothing applied), then
   * recoverer processes die one after another at each recovery step, then one finishes. Plain zarrita
   * shows the array torn after the first (recovery applied one object of several), whole after the next.
   * Then a writer dies while its own transaction recovers an entry; a read in this process finishes it.
   */
  async crashDuringRecovery(seed: number): Promise<void> {
    const first = this.writer(seed, { env: { ZARR_TX_CRASH_AT: "journal-written" }, count: 3 });
    expect((await first.child.exited).signal).toBe("SIGKILL");
    this.kills++;
    const victim = lastUnresolved(parseWriterLogs([await readFile(first.log, "utf8")]))!;
    const size = (victim.rect[1] - victim.rect[0]) * (victim.rect[3] - victim.rect[2]);
    const count = async () => (await this.readPlain(victim.rect)).filter((v) => v === victim.value).length;
    expect(await count(), "nothing applied before recovery").toBe(0);
    const [entry] = await listJournalEntries(this.store);

    await this.recoverInChild("recovery-apply-partial");
    const partial = await count();
    expect(partial, "recovery killed after applying one object of several: torn on disk").toBeGreaterThan(0);
    expect(partial).toBeLessThan(size);
    await this.recoverInChild("recovery-applied");
    expect(await count(), "recovery killed after applying everything").toBe(size);
    expect((await listJournalEntries(this.store)).map((e) => e.txid)).toEqual([entry!.txid]);
    await this.recoverInChild("recovery-cleanup-partial");
    const report = await this.recoverInChild();
    expect(report).toMatchObject({ rolledForward: [entry!.txid], discarded: [], inProgress: [] });
    expect(await listJournalEntries(this.store)).toEqual([]);

    // A transaction that dies while it recovers an entry on its way in.
    const second = this.writer(seed + 1, { env: { ZARR_TX_CRASH_AT: "journal-written" }, count: 3 });
    expect((await second.child.exited).signal).toBe("SIGKILL");
    const pending = lastUnresolved(parseWriterLogs([await readFile(second.log, "utf8")]))!;
    const third = this.writer(seed + 2, {
      env: { ZARR_TX_CRASH_AT: "recovery-apply-partial" },
      count: 2,
      first: pending.rect,
    });
    const { signal, stderr } = await third.child.exited;
    expect(signal, `the recovering writer should die in recovery:\n${stderr}`).toBe("SIGKILL");
    this.kills += 2;
    const [r0, , c0] = pending.rect;
    expect(await this.read([r0, r0 + 1, c0, c0 + 1])).toEqual([pending.value]);
    expect(new Set(await this.read(pending.rect))).toEqual(new Set([pending.value]));
  }

  /** {@link crashDuringRecovery}, then {@link recoverAndCheck} through `recover()`: its six kills. */
  async crashDuringRecoveryChecked(seed: number): Promise<RunStats> {
    await this.crashDuringRecovery(seed);
    const stats = await this.recoverAndCheck("recover");
    expect(stats.kills).toBe(6);
    return stats;
  }

  /**
   * Recovers (`recover()`, or first a plain whole-array read that recovers every committed entry by
   * itself), then checks everything: leftovers, damage, stuck locks, and the model over the final
   * array and every snapshot. Returns the run's numbers.
   */
  async recoverAndCheck(
    mode: "recover" | "transaction",
    extraSnapshots: readonly { rect: Rect; cells: number[] }[] = [],
  ): Promise<RunStats> {
    let report: RecoveryReport;
    let rolledByReads = 0;
    if (mode === "transaction") {
      const before = (await listJournalEntries(this.store)).filter((e) => e.record?.state === "commit");
      await this.read();
      // Only entries without a commit record may remain: they name no chunk, and only recover() can tell
      // that their writer is gone.
      const left = await listJournalEntries(this.store);
      expect(left.filter((e) => e.record !== undefined)).toEqual([]);
      rolledByReads = before.length;
      report = await recover(this.store, { synchronizer: this.synchronizer, minAgeMs: 0 });
      expect(report.rolledForward, "the read rolled everything committed forward already").toEqual([]);
    } else {
      report = await recover(this.store, { synchronizer: this.synchronizer, minAgeMs: 0 });
    }
    expect(report.inProgress, "every writer is dead").toEqual([]);
    expect(report.superseded).toEqual([]);
    expect(report.tempFilesKept).toEqual([]);

    const verified = await verify(this.store);
    expect(verified.damage, "every chunk decodes").toEqual([]);
    expect(verified.pendingJournal, "no journal entry left").toEqual([]);
    expect(verified.tempFiles, "no temp file left").toEqual([]);
    expect(verified.arrays.map((a) => a.path)).toEqual([this.path]);

    // No lock is stuck: a fresh process takes every chunk exclusively (the timeout is only a bound for
    // the failure case: the kernel, or Redis TTLs, free a dead holder's locks).
    const locker = this.#spawn({ ...this.#common(), role: "locker", timeoutMs: 20_000 });
    await locker.next("locked");

    const { txs, snapshots } = await this.logs();
    const history = new History(this.variant.options.shape as [number, number], txs, await this.read());
    expect(history.problems).toEqual([]);
    const all = [...snapshots, ...extraSnapshots];
    for (const snapshot of all) expect(history.checkSnapshot(snapshot)).toEqual([]);
    const inFlight = history.inFlight();
    return {
      kills: this.kills,
      transactions: txs.size,
      committed: history.committed.size,
      inFlight: inFlight.total,
      inFlightCommitted: inFlight.committed,
      snapshots: all.length,
      recovered: {
        rolledForward: report.rolledForward.length + rolledByReads,
        discarded: report.discarded.length,
        tempFiles: report.tempFilesRemoved.length,
      },
    };
  }
}

/** The last transaction of a log that began but never resolved: the one a crash cut. */
function lastUnresolved(txs: ReadonlyMap<number, TxRecord>): TxRecord | undefined {
  const unresolved = [...txs.values()].filter((t) => !t.resolved);
  return unresolved[unresolved.length - 1];
}
