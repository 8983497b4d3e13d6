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
import { readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { type JournalEntry, listJournalEntries } from "../src/index.js";
import { type CrashRig, crashSuite, type RunStats, VARIANTS } from "./crash-harness.js";

const PYTHON = "/usr/bin/python3";

/**
 * Rigs by fsync (true/false), or "in-place": fsync off and `applyInPlace` (one-file entries written into
 * the chunk files in place). Kills are counted over the whole file, reported at the end (the issue asks
 * for 200+).
 */
const crash = crashSuite<boolean | "in-place">({
  label: "crash.fs",
  tempParent: process.env.ZARR_TX_TEST_DIR ?? tmpdir(),
  tempPrefix: "zarr-tx-crash-",
  configure: (dir, kind) => ({
    store: {
      kind: "fs",
      root: join(dir, "data.zarr"),
      fsync: kind === true,
      applyInPlace: kind === "in-place",
    },
    sync: { kind: "file" },
  }),
});

const root = (r: CrashRig) => (r.storeConfig as { root: string }).root;

/**
 * Kills a writer right after it wrote a whole-array journal entry, checks the entry's record has
 * `layout` (and whatever `check` asserts), then recovers and checks the rig.
 */
async function probeEntry(
  r: CrashRig,
  seed: number,
  layout: Record<string, unknown>,
  check: (entry: JournalEntry) => void,
): Promise<RunStats> {
  const { child } = r.writer(seed, {
    env: { ZARR_TX_CRASH_AT: "journal-written" },
    count: 1,
    first: [0, 16, 0, 16],
  });
  expect((await child.exited).signal).toBe("SIGKILL");
  r.kills += 1;
  const [entry] = await listJournalEntries(r.store);
  expect(entry?.record).toMatchObject({ state: "commit", ...layout });
  check(entry!);
  return r.recoverAndCheck("recover");
}

describe("SIGKILLed writers on a FileSystemStore (FileSynchronizer)", () => {
  it("v3, random kills: every transaction all-or-nothing, readers never see one half-applied", async () => {
    const stats = await crash.run("v3 random", VARIANTS.v3, false, (r) =>
      r.randomKillsChecked(
        {
          writers: 3,
          readers: 1,
          kills: 80,
          seed: 1,
          maxDelayMs: 100,
          cli: { location: root(r), extra: ["--sync", "file"], reads: 6 },
        },
        "transaction",
      ),
    );
    expect(stats.committed).toBeGreaterThan(0);
  }, 240_000);

  it("v2 (zlib), random kills, recovered by recover()", async () => {
    await crash.run("v2 random", VARIANTS.v2, false, (r) =>
      r.randomKillsChecked({ writers: 3, readers: 1, kills: 50, seed: 2, maxDelayMs: 100 }, "recover"),
    );
  }, 240_000);

  it("sharded v3, random kills: the shard is the unit of the journal", async () => {
    await crash.run("sharded random", VARIANTS.sharded, false, (r) =>
      r.randomKillsChecked({ writers: 3, readers: 1, kills: 30, seed: 3, maxDelayMs: 100 }, "transaction"),
    );
  }, 240_000);

  it("v3 with fsync on, random kills", async () => {
    await crash.run("v3 fsync random", VARIANTS.v3, true, (r) =>
      r.randomKillsChecked({ writers: 2, readers: 0, kills: 15, seed: 4, maxDelayMs: 250 }, "recover"),
    );
  }, 240_000);

  it("applyInPlace (v3 and v2): random kills, then a kill at every step of commit and of recovery", async () => {
    // The writers do write one-file entries: the record alone, carrying the bytes.
    await crash.run("v3 in-place probe", VARIANTS.v3, "in-place", (r) =>
      probeEntry(r, 6, { inline: true }, (entry) => expect(entry.keys).toHaveLength(1)),
    );
    await crash.run("v3 in-place random", VARIANTS.v3, "in-place", (r) =>
      r.randomKillsChecked({ writers: 3, readers: 1, kills: 40, seed: 5, maxDelayMs: 100 }, "transaction"),
    );
    await crash.run("v2 in-place protocol steps", VARIANTS.v2, "in-place", (r) =>
      r.crashAtPointsChecked(["journal-written", "apply-partial", "applied"], [1, 2, 3], 50),
    );
    await crash.run("v3 in-place recovery kills", VARIANTS.v3, "in-place", (r) =>
      r.crashDuringRecoveryChecked(60),
    );
  }, 240_000);

  it("entries of many objects (here: more than 2) in a directory of their own: kills at every step", async () => {
    // The writers inherit this; the test's own process reads the layout from each record.
    process.env.ZARR_TX_JOURNAL_NEST_MIN_OBJECTS = "2";
    try {
      // First make sure the writers do use the layout.
      await crash.run("v3 nested probe", VARIANTS.v3, false, (r) =>
        probeEntry(r, 95, { nested: true }, (entry) =>
          expect(entry.keys.filter((k) => k.includes(`/${entry.txid}/`)).length).toBeGreaterThan(2),
        ),
      );
      await crash.run("v3 nested protocol steps", VARIANTS.v3, false, (r) =>
        r.crashAtPointsChecked(["journal-written", "apply-partial", "applied"], [1, 2, 3], 70),
      );
      await crash.run("v3 nested recovery kills", VARIANTS.v3, false, (r) =>
        r.crashDuringRecoveryChecked(80),
      );
      await crash.run("v3 nested random", VARIANTS.v3, false, async (r) => {
        const stats = await r.randomKillsChecked(
          { writers: 3, readers: 1, kills: 20, seed: 90, maxDelayMs: 100 },
          "recover",
        );
        // Nothing of any entry is left: no object, record or directory.
        const left = await readdir(join(root(r), ".zarr-tx", "journal"));
        expect(left).toEqual([]);
        return stats;
      });
    } finally {
      delete process.env.ZARR_TX_JOURNAL_NEST_MIN_OBJECTS;
    }
  }, 240_000);

  it("at every protocol step (v3 and v2), a later read rolls the victim forward by itself", async () => {
    for (const [variant, seed] of [
      [VARIANTS.v3, 10],
      [VARIANTS.v2, 20],
    ] as const) {
      await crash.run(`${variant.name} protocol steps`, variant, false, (r) =>
        r.crashAtPointsChecked(["journal-written", "apply-partial", "applied"], [1, 2, 3], seed),
      );
    }
  }, 240_000);

  it("during recovery itself (recover() and a recovering transaction), on v3 and sharded", async () => {
    for (const [variant, seed] of [
      [VARIANTS.v3, 30],
      [VARIANTS.sharded, 40],
    ] as const) {
      await crash.run(`${variant.name} recovery kills`, variant, false, (r) =>
        r.crashDuringRecoveryChecked(seed),
      );
    }
  }, 240_000);

  it.skipIf(!existsSync(PYTHON))(
    "zarr-python 2.13 and plain zarrita open the arrays while /.zarr-tx/ holds a pending entry",
    async () => {
      const v2 = await crash.rig(VARIANTS.v2, false);
      const v3 = await crash.rig(VARIANTS.v3, false);
      for (const r of [v2, v3]) {
        const { child } = r.writer(50, { env: { ZARR_TX_CRASH_AT: "apply-partial" }, count: 3 });
        expect((await child.exited).signal).toBe("SIGKILL");
        crash.addKills(1);
        expect(await listJournalEntries(r.store)).toHaveLength(1);
      }
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
});
