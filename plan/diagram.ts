import { toDirectedGraph } from "xstate/graph";
import type { PlanMachine } from "./build.ts";

type Graph = ReturnType<typeof toDirectedGraph>;

/** A Mermaid state diagram generated from the machine itself: never drawn by hand. */
export function mermaid(machine: PlanMachine): string {
  const g = toDirectedGraph(machine);
  const lines = ["stateDiagram-v2", `  [*] --> ${short(machine.config.initial as string)}`];
  const walk = (node: Graph, indent: string) => {
    for (const child of node.children) {
      const id = short(child.id);
      if (child.children.length > 0) {
        lines.push(
          `${indent}state ${id} {`,
          `${indent}  [*] --> ${short(child.children[0]?.id ?? "")}`,
        );
        walk(child, `${indent}  `);
        lines.push(`${indent}}`);
      }
      if (child.stateNode.type === "final") lines.push(`${indent}${id} --> [*]`);
      for (const e of child.edges)
        lines.push(`${indent}${id} --> ${short(e.target.id)}: ${label(e)}`);
    }
  };
  walk(g, "  ");
  return `${lines.join("\n")}\n`;
}

/** State ids as Mermaid accepts them: the last path segment, prefixed by its parent for substates. */
function short(id: string): string {
  const parts = id.split(".");
  if (parts.length <= 2) return parts.at(-1) ?? id;
  return `${parts.at(-2)}_${parts.at(-1)}`;
}

function label(e: Graph["edges"][number]): string {
  const t = e.label.text;
  // XState keeps a named guard as its name, an inline or parameterised one as { type }.
  const g = (e.transition as { guard?: string | { type?: string } }).guard;
  const guard = typeof g === "string" ? g : g?.type;
  if (t.startsWith("xstate.done.actor")) return guard ? `done [${guard}]` : "done";
  if (t.startsWith("xstate.error.actor")) return "error";
  if (t.startsWith("xstate.after.")) return `after ${t.split(".")[2]}`;
  return t;
}
