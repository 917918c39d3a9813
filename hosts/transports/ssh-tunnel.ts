import { createServer, type Server, type Socket } from "node:net";
import type { Client } from "ssh2";

export interface Tunnel {
  /** The local port (on 127.0.0.1) that reaches the remote address. */
  port: number;
  close(): void;
}

/**
 * A local listener on 127.0.0.1 whose connections are carried over SSH (direct-tcpip) to `to`,
 * as seen from the SSH host: how a client reaches a Postgres port this machine cannot reach.
 * `via(attempt)` gives the connection to use; a failed attempt tries the next one once.
 */
export async function openTunnel(
  via: (attempt: number) => Promise<Client>,
  to: { host: string; port: number },
): Promise<Tunnel> {
  const sockets = new Set<Socket>();
  const forward = async (socket: Socket, attempt: number): Promise<void> => {
    try {
      const client = await via(attempt);
      client.forwardOut("127.0.0.1", 0, to.host, to.port, (err, channel) => {
        if (err) {
          if (attempt === 0) void forward(socket, 1);
          else socket.destroy();
          return;
        }
        socket.pipe(channel).pipe(socket);
        channel.on("close", () => socket.destroy());
        socket.on("close", () => channel.close());
      });
    } catch {
      if (attempt === 0) void forward(socket, 1);
      else socket.destroy();
    }
  };
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => socket.destroy());
    void forward(socket, 0);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    port,
    close: () => {
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}
