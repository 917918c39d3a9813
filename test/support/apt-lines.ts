/**
 * What the pre-flight packages look (hosts/package-versions.ts) prints on a Debian bookworm host
 * with bookworm-security, postgresql-15 15.18 installed: the fixture of the pure tests.
 */
export const BOOKWORM_PACKAGE_LINES = [
  "installed postgresql-15 15.18-0+deb12u1",
  "installed postgresql-client-15 15.18-0+deb12u1",
  "candidate postgresql-15 15.20-0+deb12u1 bookworm-security",
  "candidate postgresql-15 15.18-0+deb12u1 bookworm",
  "candidate postgresql-client-15 15.20-0+deb12u1 bookworm-security",
  "candidate postgresql-client-15 15.18-0+deb12u1 bookworm",
  "tool ip yes",
  "tool arping yes",
];
