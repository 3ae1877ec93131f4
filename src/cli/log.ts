// The commands' logger is the one every layer uses (src/errors/notice.ts): one line per message
// on stderr, through consola, loaded on the first message.
export { log } from "../errors/notice.ts";
