// Messages for people go to stderr, one line each, prefixed "tsnet:"; stdout carries only data.
// consola/core brings the logger without consola's fancy reporters (the full package costs tens
// of milliseconds to import; see ARCHITECTURE.md).
import { createConsola, type ConsolaReporter } from "consola/core";
import { setWarningSink } from "../errors/notice.ts";
import { err, printable } from "./output.ts";

const oneLine: ConsolaReporter = {
  log(entry) {
    const text = entry.args.map((a) => (a instanceof Error ? a.message : String(a))).join(" ");
    const tag = entry.type === "warn" ? "warning: " : "";
    err(`tsnet: ${tag}${printable(text)}\n`);
    // The stack of an error, only for whoever debugs tsnet.
    const e = entry.args.find((a) => a instanceof Error);
    if (process.env.TSNET_DEBUG && e?.stack) err(`${e.stack}\n`);
  },
};

export const log = createConsola({
  level: process.env.TSNET_DEBUG ? 4 : 3,
  reporters: [oneLine],
});

setWarningSink((m) => log.warn(m));
