// Hidden: what the completion scripts call on every <TAB> (src/cli/complete.ts).
//   tsnet _complete bash WORDBREAKS LINE     LINE is the command line up to the cursor
//   tsnet _complete zsh|fish WORD...         the words after "tsnet", the last being typed
import { defineCommand } from "../cli/command.ts";
import { bashTrim, complete, splitLine } from "../cli/complete.ts";
import { out } from "../cli/output.ts";

export default defineCommand({
  name: "_complete",
  args: [
    { name: "SHELL", what: "a shell", description: "bash, zsh or fish" },
    { name: "WORD", what: "words", description: "what was typed", required: false, repeat: true },
  ],
  options: {},
  optionsEndAtFirstArg: true,
  examples: ["tsnet _complete fish ps --"],
  async run({ args }) {
    const [shell, ...rest] = args;
    let lines: string[];
    if (shell === "bash") {
      const [wordbreaks = "", line = ""] = rest;
      const words = splitLine(line).slice(1);
      const partial = words.at(-1) ?? "";
      lines = (await complete(words)).map((c) => bashTrim(c.word, partial, wordbreaks));
    } else {
      const found = await complete(rest.length ? rest : [""]);
      const oneLine = (s: string | undefined) => (s ?? "").replace(/\s+/g, " ");
      lines = shell === "zsh"
        ? found.map((c) => `${c.word.replaceAll(":", "\\:")}${c.description ? `:${oneLine(c.description)}` : ""}`)
        : found.map((c) => `${c.word}${c.description ? `\t${oneLine(c.description)}` : ""}`);
    }
    if (lines.length) out(`${lines.join("\n")}\n`);
    return 0;
  },
});
