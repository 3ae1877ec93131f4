// The supervisor's socket speaks one JSON line each way per connection.
import type { CreateOptions } from "../container/lifecycle.ts";

export interface RunRequest {
  op: "run";
  opts: CreateOptions;
  env: Record<string, string | undefined>;
  cwd: string;
}

/** warning: one line for the user (no cgroup v2, say), printed by the client. */
export type RunReply = { ok: true; id: string; warning?: string } | { ok: false; message: string; exitCode: number };

export function logPath(id: string): string {
  return `/run/tsnet/containers/${id}.log`;
}
