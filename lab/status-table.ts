import type { LabStatus, NodeStatus } from "./status.ts";

/** `lab status` for people: the VIP line, then one row per node. */
export function formatStatus(status: LabStatus): string {
  if (status.nodes.every((n) => !n.exists)) {
    return "The lab does not exist: `switchover lab up` creates it.";
  }
  const rows = [
    [
      "NODE",
      "ADDRESS",
      "CONTAINER",
      "POSTGRES",
      "ROLE",
      "VERSION",
      "TIMELINE",
      "LSN",
      "LAG",
      "FENCED",
    ],
    ...status.nodes.map(row),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  const table = rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd(),
  );
  const pooler = status.pooler ? [poolerLine(status.pooler)] : [];
  return [vipLine(status), hostsLine(status), ...pooler, "", ...table].join("\n");
}

function poolerLine(p: NonNullable<LabStatus["pooler"]>): string {
  const state = !p.running ? "not answering" : p.paused ? "PAUSED" : "serving";
  return `pooler ${p.address}:${p.port} (pgbouncer, ${state})    ${p.uri}`;
}

function vipLine(status: LabStatus): string {
  const { vip } = status;
  if (vip.holders.length > 1)
    return `VIP ${vip.address} on ${vip.holders.join(" AND ")} (fault: two holders)`;
  if (!vip.holder) return `VIP ${vip.address} on no node`;
  return `VIP ${vip.address} on ${vip.holder}    ${vip.uri}`;
}

function hostsLine(status: LabStatus): string {
  const n = status.nodes[0];
  const how = n ? `${n.control}${n.unit ? `, ${n.unit}` : ""}` : "";
  return `hosts: ${status.hostKind}${how ? ` (${how})` : ""}`;
}

function row(n: NodeStatus): string[] {
  return [
    n.name,
    n.address,
    !n.exists ? "absent" : n.running ? "running" : "stopped",
    n.running ? n.postgres : "-",
    n.role ?? "-",
    n.version ?? "-",
    n.timeline === null ? "-" : String(n.timeline),
    n.lsn ?? "-",
    lag(n),
    n.fenced === null
      ? "-"
      : n.fenced
        ? `yes${n.startConf ? ` (start.conf ${n.startConf})` : ""}`
        : "no",
  ];
}

function lag(n: NodeStatus): string {
  if (n.role !== "standby" || n.postgres !== "up") return "-";
  const bytes = n.lagBytes === null ? "?" : `${n.lagBytes} B`;
  return `${bytes} (${n.walReceiver ?? "no WAL receiver"})`;
}
