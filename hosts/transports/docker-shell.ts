import { type Duplex, PassThrough } from "node:stream";
import type Docker from "dockerode";
import { ShellSession } from "../shell-session.ts";

/** A shell kept open in a container as `user` (`docker exec -i sh`), for ShellSessions. */
export async function openContainerShell(
  docker: Docker,
  container: string,
  user: string,
): Promise<ShellSession> {
  const exec = await docker.getContainer(container).exec({
    Cmd: ["sh"],
    User: user,
    WorkingDir: "/tmp",
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = (await exec.start({ hijack: true, stdin: true })) as Duplex;
  const session = new ShellSession(stream, () => stream.destroy());
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  docker.modem.demuxStream(stream, stdout, stderr);
  stdout.setEncoding("utf8");
  stderr.setEncoding("utf8");
  stdout.on("data", (c: string) => session.received("out", c));
  stderr.on("data", (c: string) => session.received("err", c));
  const end = (why: string) => () => session.end(new Error(`shell in ${container} ${why}`));
  stream.on("end", end("ended"));
  stream.on("close", end("closed"));
  stream.on("error", (e: Error) => session.end(e));
  return session;
}
