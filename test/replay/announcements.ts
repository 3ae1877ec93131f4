// The nft commands whose announcements test/replay/capture.ts records (each is one transaction):
// other tables' changes, tsnet's table's additions and deletions, a same-named table of another
// family, a table whose name starts with tsnet's, and a whole flush at the end.
export const ANNOUNCEMENT_COMMANDS = [
  "add table inet other",
  "add set inet other s { type inet_service; }",
  "add element inet other s { 1 }",
  "delete element inet other s { 1 }",
  "add table inet tsnet",
  "add chain inet tsnet c",
  "add rule inet tsnet c accept",
  "add map inet tsnet ports { type inet_proto . inet_service : ipv4_addr . inet_service; }",
  "add element inet tsnet ports { tcp . 8080 : 10.77.0.2 . 80 }",
  "add element inet tsnet ports { udp . 53 : 10.77.0.3 . 53 }",
  "add table ip tsnet",
  "delete table ip tsnet",
  "add table inet tsnetx",
  "delete table inet tsnetx",
  "delete element inet tsnet ports { tcp . 8080 }",
  "flush chain inet tsnet c",
  "flush map inet tsnet ports",
  "flush ruleset",
];
