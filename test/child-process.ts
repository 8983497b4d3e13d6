/**
 * Node child processes that talk to the test in JSON lines on stdout ({"event":"ready"}, …): the crash
 * tests' children (test/crash-harness.ts) and FileSynchronizer's (test/sync.file.processes.test.ts).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";

export type Message = Record<string, unknown> & { event: string };

/** A child process (`node …args`, with `env` over the test's environment) and the JSON lines it prints. */
export class Child {
  readonly process: ChildProcessWithoutNullStreams;
  readonly messages: Message[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  readonly #waiters: { event: string; resolve: (m: Message) => void }[] = [];
  #stderr = "";

  constructor(args: readonly string[], env?: Record<string, string>) {
    this.process = spawn(process.execPath, args, {
      stdio: ["pipe", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    LIVE.add(this);
    this.process.stderr.on("data", (chunk: Buffer) => {
      this.#stderr += chunk.toString();
    });
    createInterface({ input: this.process.stdout }).on("line", (line) => {
      let message: Message;
      try {
        message = JSON.parse(line) as Message;
      } catch {
        return;
      }
      this.messages.push(message);
      for (const waiter of this.#waiters.filter((w) => w.event === message.event)) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve(message);
      }
    });
    this.exited = new Promise((resolve) => {
      this.process.on("exit", (code, signal) => {
        LIVE.delete(this);
        resolve({ code, signal, stderr: this.#stderr });
      });
    });
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** The first message of this kind; rejects if the child exits without printing it. */
  next(event: string): Promise<Message> {
    const seen = this.messages.find((m) => m.event === event);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ event, resolve });
      void this.exited.then(({ code, signal, stderr }) => {
        const late = this.messages.find((m) => m.event === event);
        if (late !== undefined) resolve(late);
        else reject(new Error(`child exited (${code ?? signal}) before "${event}":\n${stderr}`));
      });
    });
  }

  /** SIGKILLs it; resolves true when this kill is what ended it (it was still running). */
  async kill(): Promise<boolean> {
    if (!this.running) return false;
    this.process.kill("SIGKILL");
    const { signal } = await this.exited;
    return signal === "SIGKILL";
  }
}

/** Children still running: a failed test must not leave processes behind (each is killed by its pid). */
const LIVE = new Set<Child>();

/** SIGKILLs every child still running (after each test). */
export function killAll(): void {
  for (const child of LIVE) child.process.kill("SIGKILL");
}
