// The supervisor's socket speaks one JSON line each way per connection.
import type { CreateOptions } from "../container/lifecycle.ts";

export interface RunRequest {
  op: "run";
  opts: CreateOptions;
  env: Record<string, string | undefined>;
  cwd: string;
}

export type RunReply = { ok: true; id: string } | { ok: false; message: string; exitCode: number };

export function logPath(id: string): string {
  return `/run/tsnet/containers/${id}.log`;
}
