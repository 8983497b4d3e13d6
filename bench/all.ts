/**
 * `npm run bench`: runs every benchmark, one child process per script, one after the other (never two
 * at once: they would measure each other), and passes their JSON lines through. Scripts that do not
 * exist in this checkout are skipped with a note, so the list can name benchmarks other work adds.
 * Every result line follows the schema of bench/lib.ts (workload, variant, n, median, p99 or spread,
 * unit, ratio, baseline); at the end one `summary` line lists every goal that a line carries, met or not.
 *
 *   npm run bench                       # everything (several minutes)
 *   npm run bench -- --quick            # a smoke run of everything (a few minutes)
 *   npm run bench -- diagonal           # only workloads whose name contains "diagonal"
 *   npm run bench -- --only bulk,scale  # only these scripts
 *   npm run bench -- --out results.jsonl  # also write every line to a file
 *
 * Benchmarks are not tests: a missed goal does not fail the run; a script that crashes does (exit 1).
 */
import { spawn } from "node:child_process";
import { createWriteStream, existsSync, type WriteStream } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** Every benchmark script, in the order they run. */
const SCRIPTS = [
  {
    name: "run",
    file: "run.ts",
    what: "zarr-tx vs raw zarrita: small and compressed writes, in-process locks",
  },
  { name: "bulk", file: "bulk.ts", what: "uncontended bulk write 4096x4096 float32 vs zarrita and the disk" },
  { name: "file-sync", file: "file-sync.ts", what: "#857 diagonals and counter vs zarr-python 2.13" },
  { name: "locks", file: "locks.ts", what: "lock latency per synchronizer, 1…4096 keys" },
  { name: "redis-sync", file: "redis-sync.ts", what: "RedisSynchronizer vs a raw EVALSHA floor" },
  {
    name: "scale",
    file: "scale.ts",
    what: "1e6-chunk key planning, 1e5-chunk file locks, a 1e12-element array",
  },
  { name: "journal", file: "journal.ts", what: "what the crash journal costs" },
  { name: "s3", file: "s3.ts", what: "S3 store + Redis vs filesystem + file locks" },
  // Last: deleting its 65,536 files keeps the disk busy for minutes, which would slow the scripts after it.
  {
    name: "fs-ops",
    file: "fs-ops.ts",
    what: "replace by rename vs by exchange, listing a directory that held many files",
  },
] as const;

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..");

interface Goal {
  readonly script: string;
  readonly workload: string;
  readonly variant: string;
  readonly goal: string;
  readonly met: boolean;
  readonly median: unknown;
  readonly unit: unknown;
  readonly ratio: unknown;
}

/** Runs one script; resolves with its exit code. Lines go to stdout (and `out`) as they come. */
function runScript(file: string, argv: readonly string[], onLine: (line: string) => void): Promise<number> {
  const child = spawn(process.execPath, ["--import", "tsx", join(here, file), ...argv], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  createInterface({ input: child.stdout }).on("line", onLine);
  return new Promise((resolve) => {
    child.on("error", () => resolve(1));
    child.on("close", (code, signal) => resolve(code ?? (signal ? 1 : 0)));
  });
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const at = (name: string) => argv.indexOf(`--${name}`);
  const only = at("only") >= 0 ? argv[at("only") + 1]?.split(",") : undefined;
  const outPath = at("out") >= 0 ? argv[at("out") + 1] : undefined;
  // Options for this orchestrator are not passed on; everything else is (--quick, a filter, --repeats…).
  const own = new Set<number>();
  for (const name of ["only", "out"]) if (at(name) >= 0) own.add(at(name)).add(at(name) + 1);
  const passOn = argv.filter((_, i) => !own.has(i));
  const out: WriteStream | undefined = outPath ? createWriteStream(outPath) : undefined;
  const goals: Goal[] = [];
  const failed: string[] = [];
  const started = performance.now();
  for (const script of SCRIPTS) {
    if (only && !only.includes(script.name)) continue;
    const path = join(here, script.file);
    const header = { note: true, bench: "all", script: script.name, what: script.what };
    if (!existsSync(path)) {
      const line = JSON.stringify({ ...header, skipped: "not in this checkout" });
      console.log(line);
      out?.write(`${line}\n`);
      continue;
    }
    const t = performance.now();
    console.log(JSON.stringify({ ...header, args: passOn }));
    const code = await runScript(script.file, passOn, (line) => {
      console.log(line);
      out?.write(`${line}\n`);
      try {
        const parsed = JSON.parse(line) as Record<string, unknown>;
        if (typeof parsed.goal === "string" && typeof parsed.met === "boolean") {
          goals.push({
            script: script.name,
            workload: String(parsed.workload),
            variant: String(parsed.variant),
            goal: parsed.goal,
            met: parsed.met,
            median: parsed.median,
            unit: parsed.unit,
            ratio: parsed.ratio,
          });
        }
      } catch {
        // not JSON: passed through as is
      }
    });
    if (code !== 0) failed.push(script.name);
    const done = {
      note: true,
      bench: "all",
      script: script.name,
      exit: code,
      seconds: +((performance.now() - t) / 1000).toFixed(1),
    };
    console.log(JSON.stringify(done));
  }
  const summary = {
    summary: true,
    date: new Date().toISOString().slice(0, 10),
    seconds: +((performance.now() - started) / 1000).toFixed(1),
    goals_met: goals.filter((g) => g.met).length,
    goals_missed: goals.filter((g) => !g.met).length,
    goals,
    failed_scripts: failed,
  };
  console.log(JSON.stringify(summary));
  out?.write(`${JSON.stringify(summary)}\n`);
  await new Promise<void>((resolve) => (out ? out.end(resolve) : resolve()));
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = await main();
