/**
 * Crash atomicity on the filesystem, with real processes and SIGKILL (see test/crash-harness.ts for the
 * checks after every run, and test/crash-model.ts for the all-or-nothing oracle).
 *
 * Writer processes share a FileSystemStore array through FileSynchronizer and run many short
 * transactions over overlapping rectangles of 2–16 chunks; they are SIGKILLed at random times, and
 * deterministically at every step of the commit protocol and of recovery (`ZARR_TX_CRASH_AT`). Readers
 * (library `get` in their own processes, and `zarr-tx get` processes) read meanwhile.
 *
 * Most runs use `fsync: false`: a killed process loses nothing the kernel already has, so fsync is not
 * what a process kill tests, and it would make each transaction several times slower. One run keeps
 * fsync on. Set ZARR_TX_TEST_DIR to run on another filesystem.
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { listJournalEntries } from "../src/index.js";
import type { StoreConfig, SyncConfig } from "./crash-child.js";
import {
  type Bundles,
  buildBundles,
  CrashRig,
  killAll,
  type RunStats,
  VARIANTS,
  type Variant,
} from "./crash-harness.js";

const PYTHON = "/usr/bin/python3";

let bundles: Bundles;
const dirs: string[] = [];
const rigs: CrashRig[] = [];

beforeAll(async () => {
  bundles = await buildBundles();
});
afterEach(async () => {
  killAll();
  await Promise.all(rigs.splice(0).map((rig) => rig.tearDown()));
});
afterAll(async () => {
  await Promise.all([...dirs.map((d) => rm(d, { recursive: true, force: true })), bundles?.dispose()]);
});

/** Kills counted over the whole file, reported at the end (the issue asks for at least 200). */
let totalKills = 0;

async function rig(variant: Variant, fsync: boolean): Promise<CrashRig> {
  const dir = await mkdtemp(join(process.env.ZARR_TX_TEST_DIR ?? tmpdir(), "zarr-tx-crash-"));
  dirs.push(dir);
  const store: StoreConfig = { kind: "fs", root: join(dir, "data.zarr"), fsync };
  const sync: SyncConfig = { kind: "file" };
  const r = new CrashRig(bundles, store, sync, variant, dir);
  await r.setUp();
  rigs.push(r);
  return r;
}

function report(name: string, stats: RunStats, startedAt: number): void {
  totalKills += stats.kills;
  console.log(
    `crash.fs ${name}: ${JSON.stringify({ ...stats, seconds: Math.round((performance.now() - startedAt) / 100) / 10 })}`,
  );
}

describe("SIGKILLed writers on a FileSystemStore (FileSynchronizer)", () => {
  it("v3, random kills: every transaction all-or-nothing, readers never see one half-applied", async () => {
    const started = performance.now();
    const r = await rig(VARIANTS.v3, false);
    const cliSnapshots = await r.randomKills({
      writers: 3,
      readers: 1,
      kills: 80,
      seed: 1,
      maxDelayMs: 100,
      cli: { location: (r.storeConfig as { root: string }).root, extra: ["--sync", "file"], reads: 6 },
    });
    expect(cliSnapshots.length, "zarr-tx get processes ran during the kills").toBeGreaterThan(0);
    const stats = await r.recoverAndCheck("transaction", cliSnapshots);
    expect(stats.kills).toBeGreaterThanOrEqual(80);
    expect(stats.committed).toBeGreaterThan(0);
    report("v3 random", stats, started);
  }, 240_000);

  it("v2 (zlib), random kills, recovered by recover()", async () => {
    const started = performance.now();
    const r = await rig(VARIANTS.v2, false);
    await r.randomKills({ writers: 3, readers: 1, kills: 50, seed: 2, maxDelayMs: 100 });
    const stats = await r.recoverAndCheck("recover");
    expect(stats.kills).toBeGreaterThanOrEqual(50);
    report("v2 random", stats, started);
  }, 240_000);

  it("sharded v3, random kills: the shard is the unit of the journal", async () => {
    const started = performance.now();
    const r = await rig(VARIANTS.sharded, false);
    await r.randomKills({ writers: 3, readers: 1, kills: 30, seed: 3, maxDelayMs: 100 });
    const stats = await r.recoverAndCheck("transaction");
    expect(stats.kills).toBeGreaterThanOrEqual(30);
    report("sharded random", stats, started);
  }, 240_000);

  it("v3 with fsync on, random kills", async () => {
    const started = performance.now();
    const r = await rig(VARIANTS.v3, true);
    await r.randomKills({ writers: 2, readers: 0, kills: 15, seed: 4, maxDelayMs: 250 });
    const stats = await r.recoverAndCheck("recover");
    expect(stats.kills).toBeGreaterThanOrEqual(15);
    report("v3 fsync random", stats, started);
  }, 240_000);

  it("at every protocol step (v3 and v2), a later read rolls the victim forward by itself", async () => {
    const started = performance.now();
    const points = ["journal-written", "apply-partial", "applied"];
    for (const [variant, seed] of [
      [VARIANTS.v3, 10],
      [VARIANTS.v2, 20],
    ] as const) {
      const r = await rig(variant, false);
      await r.crashAtPoints(points, [1, 2, 3], seed);
      const stats = await r.recoverAndCheck("recover");
      expect(stats.kills).toBe(points.length * 3);
      report(`${variant.name} protocol steps`, stats, started);
    }
  }, 240_000);

  it("during recovery itself (recover() and a recovering transaction), on v3 and sharded", async () => {
    const started = performance.now();
    for (const [variant, seed] of [
      [VARIANTS.v3, 30],
      [VARIANTS.sharded, 40],
    ] as const) {
      const r = await rig(variant, false);
      await r.crashDuringRecovery(seed);
      const stats = await r.recoverAndCheck("recover");
      expect(stats.kills).toBe(6);
      report(`${variant.name} recovery kills`, stats, started);
    }
  }, 240_000);

  it.skipIf(!existsSync(PYTHON))(
    "zarr-python 2.13 and plain zarrita open the arrays while /.zarr-tx/ holds a pending entry",
    async () => {
      const v2 = await rig(VARIANTS.v2, false);
      const v3 = await rig(VARIANTS.v3, false);
      for (const r of [v2, v3]) {
        const { child } = r.writer(50, { env: { ZARR_TX_CRASH_AT: "apply-partial" }, count: 3 });
        expect((await child.exited).signal).toBe("SIGKILL");
        totalKills++;
        expect(await listJournalEntries(r.store)).toHaveLength(1);
      }
      const root = (r: CrashRig) => (r.storeConfig as { root: string }).root;
      expect(await readdir(join(root(v2), ".zarr-tx", "journal"))).not.toEqual([]);
      // zarr-python 2.13: the root group lists the array and nothing of .zarr-tx; the array reads whole.
      const script = [
        "import json, sys, zarr",
        "store = zarr.DirectoryStore(sys.argv[1])",
        "a = zarr.open_array(store, mode='r', path='a')",
        "print(json.dumps({'shape': list(a.shape), 'cells': a[:].ravel().tolist(), 'members': sorted(zarr.storage.listdir(store))}))",
      ].join("\n");
      const run = spawnSync(PYTHON, ["-c", script, root(v2)], { encoding: "utf8" });
      expect(run.status, run.stderr).toBe(0);
      const python = JSON.parse(run.stdout) as { shape: number[]; cells: number[]; members: string[] };
      expect(python.shape).toEqual([16, 16]);
      // What zarr-python reads is what is stored (the pending transaction half-applied, as on disk).
      expect(python.cells).toEqual(await v2.readPlain([0, 16, 0, 16]));
      expect(python.members).toContain("a");
      // Plain zarrita reads the v3 array (readPlain opens it through zarrita alone).
      expect(await v3.readPlain([0, 16, 0, 16])).toHaveLength(256);
      for (const r of [v2, v3]) await r.recoverAndCheck("recover");
      const after = spawnSync(PYTHON, ["-c", script, root(v2)], { encoding: "utf8" });
      expect(JSON.parse(after.stdout).cells).toEqual(await v2.read());
    },
    120_000,
  );

  afterAll(() => {
    console.log(`crash.fs: ${totalKills} kills in all`);
  });
});
