import { describe, expect, it } from "vitest";
import { syncStandbyNeed } from "../hosts/sync-standby.ts";

describe("synchronous_standby_names and the standby the upgrade stops", () => {
  const standby = ["node2", "15/main"];
  it.each([
    ["*", true],
    ["node2", true],
    ["FIRST 1 (node2)", true],
    ['ANY 1 ("15/main", s2)', false],
    ['ANY 2 ("15/main", s2)', true],
    ["FIRST 1 (node2, node3)", false],
    ["2 (node2, node3)", true],
    ["", false],
    ["s2", false],
  ])("%s: the standby needed is %s", (setting, needed) => {
    expect(syncStandbyNeed(setting, standby).needed).toBe(needed);
  });
  it("says why and what to do", () => {
    expect(syncStandbyNeed("FIRST 1 (node2)", standby)).toEqual({
      needed: true,
      reason:
        "synchronous_standby_names = 'FIRST 1 (node2)' needs 1 of (node2), and stopping the standby leaves 0: every commit would wait for the whole upgrade (set it to '' for the window, or add another synchronous standby)",
    });
  });
});
