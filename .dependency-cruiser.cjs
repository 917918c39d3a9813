/**
 * The layers of design.md, imports only downwards:
 *   cli → verify → lab → run → plan | hosts | sim → core
 * plan, hosts and sim sit side by side and never import each other. Tests may import anything.
 * `npm run lint` runs this; .ci/run fails on a violation.
 */
const layers = ["core", "plan|hosts|sim", "run", "lab", "verify", "cli"];

/** For each layer, every folder it must not import: the layers above it. */
const upward = layers.slice(0, -1).map((layer, i) => ({
  name: `no-upward-from-${layer.split("|")[0]}`,
  comment: `${layer} imports only what lies below it (${layers.slice(0, i).join(", ") || "nothing of ours"})`,
  severity: "error",
  from: { path: `^(${layer})/` },
  to: { path: `^(${layers.slice(i + 1).join("|")})/` },
}));

/** plan, hosts and sim are siblings: the plan names effects, hosts and sim implement the port. */
const siblings = ["plan", "hosts", "sim"].map((folder) => ({
  name: `no-sibling-from-${folder}`,
  comment: `${folder} does not import the other layer-2 folders`,
  severity: "error",
  from: { path: `^${folder}/` },
  to: { path: `^(${["plan", "hosts", "sim"].filter((f) => f !== folder).join("|")})/` },
}));

module.exports = {
  forbidden: [
    ...upward,
    ...siblings,
    {
      name: "no-circular",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "no-test-imports-in-source",
      severity: "error",
      from: { pathNot: "^test/" },
      to: { path: "^test/" },
    },
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { extensions: [".ts", ".js"] },
  },
};
