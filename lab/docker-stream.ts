import type Docker from "dockerode";
import type { Progress } from "../core/progress.ts";

/** One message of a Docker JSON progress stream (build, import). */
interface DockerStreamEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

export interface DockerStreamOutcome {
  ok: boolean;
  error?: string;
  /** The last lines of output, so a failure can be explained without scrolling back. */
  tail: string[];
}

/**
 * Follows a Docker JSON progress stream to its end, forwarding each output line to `progress`.
 * Resolves with the outcome (a build error is data here); rejects only when the stream breaks.
 */
export function followDockerStream(
  docker: Docker,
  stream: NodeJS.ReadableStream,
  progress: Progress,
): Promise<DockerStreamOutcome> {
  const tail: string[] = [];
  let error: string | undefined;
  const onEvent = (event: DockerStreamEvent) => {
    const text = event.stream ?? event.status;
    for (const line of (text ?? "").split("\n")) {
      if (line.trim() === "") continue;
      tail.push(line);
      if (tail.length > 20) tail.shift();
      progress(line);
    }
    if (event.error) error = event.errorDetail?.message ?? event.error;
  };
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null) => {
        if (err) reject(err);
        else resolve(error === undefined ? { ok: true, tail } : { ok: false, error, tail });
      },
      onEvent,
    );
  });
}
