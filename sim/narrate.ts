import type { SimNode, WorldEvent, WorldState } from "./model.ts";

/**
 * A line for a person when a host acts by itself (the package scripts, a reboot, the boot) or a
 * fence is set or cleared; null for the rest (WAL, clients, what a command plainly did).
 * `s` is the state just after `e`. The lines come from the world's log, so they replay too.
 */
export function narrate(e: WorldEvent, s: WorldState): string | null {
  if (e.type === "watchdog" && e.watchdog.decision === "watchdog")
    return `${e.watchdog.node}'s watchdog takes the run back there: its commands that would go forward there are refused from now on`;
  const n = "node" in e ? s.nodes[e.node] : undefined;
  if (!n) return null;
  switch (e.type) {
    case "fenced":
      return e.fenced
        ? `${n.name} fenced${n.hostKind === "debian" ? " (start.conf manual)" : ""}: only a command starts it now`
        : `${n.name} unfenced${n.hostKind === "debian" ? " (start.conf auto)" : ""}`;
    case "stopping":
      if (e.by === "packageScripts") return `the package scripts stop ${n.name} (prerm)`;
      if (e.by === "reboot") return `systemd stops ${n.name}'s server for the reboot`;
      return null;
    case "started":
      if (e.by === "packageScripts")
        return `the package scripts started ${n.name} again (not fenced), as ${role(n)}`;
      if (e.by === "boot") return `the boot started ${n.name} (start.conf auto), as ${role(n)}`;
      return null;
    case "upgraded":
      if (n.hostKind === "debian" && n.fenced && n.process === "stopped")
        return `the package scripts leave ${n.name} down: it is fenced`;
      return null;
    case "hostDown":
      return `${n.name}'s host reboots: it answers nothing until it has booted, and its VIP address goes`;
    case "hostUp":
      return `${n.name}'s host has booted${bootNote(n)}`;
    default:
      return null;
  }
}

function role(n: SimNode): string {
  return n.inRecovery ? `a standby of ${n.upstream ?? "?"}` : "a primary";
}

function bootNote(n: SimNode): string {
  if (n.hostKind === "pg_ctl") return ": nothing starts postgres there";
  if (n.fenced) return ": its cluster stays down, fenced";
  return "";
}
