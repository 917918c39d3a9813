import { spawn } from "node:child_process";
import { EnvironmentError } from "../core/errors.ts";
import { connectDocker } from "./engine.ts";
import { inspectContainer } from "./nodes.ts";
import { labTopology, NODE_NAMES, type NodeName, PG } from "./topology.ts";

export type PsqlTarget = NodeName | "vip";

export class LabNotRunningError extends EnvironmentError {
  override readonly name = "LabNotRunningError";
}

/**
 * An interactive psql in the lab, stdio inherited: on a node's own server (local socket), or
 * through the VIP (run from a lab host, so it works without a psql on this machine).
 * Returns psql's exit code.
 */
export async function labPsql(target: PsqlTarget, psqlArgs: string[]): Promise<number> {
  const docker = await connectDocker();
  const topology = labTopology();
  const running: NodeName[] = [];
  for (const name of NODE_NAMES) {
    if ((await inspectContainer(docker, topology.nodes[name].container))?.State.Running)
      running.push(name);
  }
  const from = target === "vip" ? running[0] : running.includes(target) ? target : undefined;
  if (!from) {
    throw new LabNotRunningError(
      `${target === "vip" ? "no lab node" : target} is not running: \`switchover lab up\` starts the lab`,
    );
  }
  const host = target === "vip" ? topology.vip : PG.socketDir;
  const tty = process.stdin.isTTY ? ["-it"] : ["-i"];
  const argv = [
    "exec",
    ...tty,
    "-u",
    PG.osUser,
    topology.nodes[from].container,
    "psql",
    "-h",
    host,
    "-p",
    String(PG.port),
    "-U",
    PG.superuser,
    ...psqlArgs,
  ];
  // The docker CLI handles the terminal (raw mode, resize) better than a hand-made exec would.
  const child = spawn("docker", argv, { stdio: "inherit" });
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve(code ?? 1));
  });
}
