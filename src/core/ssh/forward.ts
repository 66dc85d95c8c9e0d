// The runner's tracker and seeder on a host's own loopback, forwarded over the built-in client's connection.
import net from 'node:net'
import type { Client as SshClient, ClientChannel } from 'ssh2'

/** Ports on the host's 127.0.0.1 that lead to the runner's services. */
export interface Tunnel {
  seederPort: number
  trackerPort: number
  /** Connections carried so far (for the host's log). */
  connections(): number
  /** Stops the forwards; open connections end with the SSH connection. */
  close(): void
}

/** sshd said no to a remote forward: the reason as the server gave it. */
export class ForwardRefused extends Error {}

const LOOPBACK = '127.0.0.1'

function forwardIn(client: SshClient, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new ForwardRefused(`no answer to the forward request in ${timeoutMs / 1000} s`)), timeoutMs)
    try {
      client.forwardIn(LOOPBACK, 0, (err, port) => {
        clearTimeout(timer)
        if (err) reject(new ForwardRefused(err.message))
        else resolve(port)
      })
    } catch (err) {
      clearTimeout(timer)
      reject(new ForwardRefused((err as Error).message))
    }
  })
}

/**
 * Asks the host's sshd for two ports on its loopback (like `ssh -R 0:…`) and joins every connection to
 * them with the runner's tracker or seeder on this machine's loopback. Rejects with ForwardRefused when
 * sshd does not allow it (AllowTcpForwarding no or local, DisableForwarding, a restricted key).
 */
export async function openTunnel(client: SshClient, to: { seederPort: number; trackerPort: number }, timeoutMs = 10_000): Promise<Tunnel> {
  const seederPort = await forwardIn(client, timeoutMs)
  const trackerPort = await forwardIn(client, timeoutMs)
  const target = new Map([[seederPort, to.seederPort], [trackerPort, to.trackerPort]])
  let carried = 0
  let closed = false
  const onConnection = (details: { destPort: number }, accept: () => ClientChannel, reject: () => void) => {
    const port = target.get(details.destPort)
    if (port === undefined || closed) return reject()
    const channel = accept()
    const socket = net.connect({ host: LOOPBACK, port })
    carried++
    // Either side ending or failing ends the other: a half-open pair would hold a wire forever.
    const end = () => {
      socket.destroy()
      channel.destroy()
    }
    socket.once('error', end)
    channel.once('error', end)
    socket.once('close', end)
    channel.once('close', end)
    channel.pipe(socket).pipe(channel)
  }
  client.on('tcp connection', onConnection)
  return {
    seederPort,
    trackerPort,
    connections: () => carried,
    close: () => {
      if (closed) return
      closed = true
      client.off('tcp connection', onConnection)
      for (const port of target.keys()) {
        try {
          client.unforwardIn(LOOPBACK, port)
        } catch {
          // the connection is gone already: so are its forwards
        }
      }
    },
  }
}
