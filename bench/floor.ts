// The benchmark's `floor` method: the ideal push over plain TCP, one small program run as the sender on the runner and as a receiver on every host.
//
// The schedule is the one no push can beat with one upload link on the runner: the runner streams slice k
// of the file (bytes [k·size/N, (k+1)·size/N)) to host k only; host k writes it at its offset and forwards
// every chunk, as it arrives, to every other host; every host writes what it receives at the right offset.
// No hashing, no encryption, no protocol beyond a 16-byte header per connection (offset and length, both
// u64 big-endian). It only imports node's own modules so that the hosts' node (an older one) can run it.
//
//   node floor.js send FILE SIZE ADDR:PORT...           slice k of FILE to the k-th ADDR:PORT, then exit
//   node floor.js host K DEST SIZE PORT ADDR...         be host K of the ADDRs (all hosts, in order; its own
//                                                       included): listen on ADDR[K]:PORT, write DEST
//   options: --timeout-ms MS (exit 3 when the push takes longer)
//
// A host prints `listening` once it accepts connections and `closed` once every byte of the file is
// written and the file closed (no fsync: like scp, the bytes are in the page cache, not on the disk); it
// exits 0 once its forwards are flushed too. Errors go to stderr with exit 1.
import fs from 'node:fs'
import net from 'node:net'

const HEADER = 16
/** Reads from the page cache in 1 MiB chunks: fewer, larger socket writes. */
const READ_CHUNK = 1024 * 1024

function fail(message: string, code = 1): never {
  process.stderr.write(`floor: ${message}\n`)
  process.exit(code)
}

const sliceOf = (k: number, n: number, size: number) => {
  const start = Math.floor((k * size) / n)
  return { start, length: Math.floor(((k + 1) * size) / n) - start }
}

function header(offset: number, length: number): Buffer {
  const b = Buffer.alloc(HEADER)
  b.writeBigUInt64BE(BigInt(offset), 0)
  b.writeBigUInt64BE(BigInt(length), 8)
  return b
}

/** Reads the header off a socket, then hands over the socket with the rest of its bytes still unread. */
function readHeader(sock: net.Socket, then: (offset: number, length: number) => void): void {
  const onReadable = () => {
    const h = sock.read(HEADER) as Buffer | null
    if (!h) return // fewer than 16 bytes so far
    sock.removeListener('readable', onReadable)
    then(Number(h.readBigUInt64BE(0)), Number(h.readBigUInt64BE(8)))
  }
  sock.on('readable', onReadable)
}

function send(file: string, size: number, targets: string[]): void {
  let open = targets.length
  targets.forEach((target, k) => {
    const i = target.lastIndexOf(':')
    const { start, length } = sliceOf(k, targets.length, size)
    const sock = net.connect({ host: target.slice(0, i), port: Number(target.slice(i + 1)) })
    sock.on('error', (err) => fail(`send to ${target}: ${err.message}`))
    sock.write(header(start, length))
    // end is inclusive; an empty slice (size < N) sends the header only.
    if (length > 0) fs.createReadStream(file, { start, end: start + length - 1, highWaterMark: READ_CHUNK }).on('error', (err) => fail(`read ${file}: ${err.message}`)).pipe(sock)
    else sock.end()
    sock.on('close', () => {
      if (--open === 0) process.exit(0)
    })
  })
}

function host(k: number, dest: string, size: number, port: number, addresses: string[]): void {
  const n = addresses.length
  const own = sliceOf(k, n, size)
  const fd = fs.openSync(dest, 'w', 0o644)
  let slicesLeft = n // own slice from the runner + one per other host
  let forwardsLeft = n - 1
  let closed = false
  const maybeExit = () => {
    if (closed && forwardsLeft === 0) process.exit(0)
  }
  const sliceWritten = (offset: number, length: number, written: number) => {
    if (written !== length) fail(`slice at ${offset}: ${written} of ${length} bytes arrived`)
    if (--slicesLeft > 0) return
    fs.close(fd, (err) => {
      if (err) fail(`close ${dest}: ${err.message}`)
      closed = true
      process.stdout.write('closed\n')
      maybeExit()
    })
  }
  /** Every other host, connected once the runner's connection arrives (all hosts listen before the runner starts). */
  const forwardTo = (offset: number, length: number): net.Socket[] =>
    addresses.flatMap((address, j) => {
      if (j === k) return []
      const peer = net.connect({ host: address, port })
      peer.on('error', (err) => fail(`forward to ${address}: ${err.message}`))
      peer.on('close', () => {
        forwardsLeft--
        maybeExit()
      })
      peer.write(header(offset, length))
      return [peer]
    })
  const server = net.createServer((sock) => {
    sock.on('error', (err) => fail(`receive: ${err.message}`))
    readHeader(sock, (offset, length) => {
      if (offset + length > size) fail(`slice ${offset}+${length} is past the end (${size})`)
      // Positional writes on the shared descriptor: slices land at their offsets in any order.
      const file = fs.createWriteStream(dest, { fd, start: offset, autoClose: false })
      file.on('error', (err) => fail(`write ${dest}: ${err.message}`))
      file.on('finish', () => sliceWritten(offset, length, file.bytesWritten))
      // The runner sends only this host's own slice; other hosts only theirs.
      const fromRunner = offset === own.start && length === own.length
      // pipe() to several streams pauses the source while any of them is full, and ends them all at its end.
      if (fromRunner) for (const peer of forwardTo(offset, length)) sock.pipe(peer)
      sock.pipe(file)
    })
  })
  server.maxConnections = n
  server.on('error', (err) => fail(`listen on ${addresses[k]}:${port}: ${err.message}`))
  server.listen(port, addresses[k], () => process.stdout.write('listening\n'))
}

function main(argv: string[]): void {
  const t = argv.indexOf('--timeout-ms')
  if (t >= 0) {
    const ms = Number(argv[t + 1])
    argv.splice(t, 2)
    if (!(ms > 0)) fail('--timeout-ms needs a positive number', 2)
    setTimeout(() => fail(`timed out after ${ms} ms`, 3), ms).unref()
  }
  const [mode, ...rest] = argv
  const whole = (s: string | undefined, what: string) => {
    const v = Number(s)
    if (!Number.isSafeInteger(v) || v < 0) fail(`${what} must be a whole number, got ${s}`, 2)
    return v
  }
  if (mode === 'send' && rest.length >= 3) return send(rest[0]!, whole(rest[1], 'SIZE'), rest.slice(2))
  if (mode === 'host' && rest.length >= 5) {
    const addresses = rest.slice(4)
    const k = whole(rest[0], 'K')
    if (k >= addresses.length) fail(`K = ${k} but only ${addresses.length} hosts`, 2)
    return host(k, rest[1]!, whole(rest[2], 'SIZE'), whole(rest[3], 'PORT'), addresses)
  }
  fail('usage: floor.js send FILE SIZE ADDR:PORT... | floor.js host K DEST SIZE PORT ADDR... [--timeout-ms MS]', 2)
}

main(process.argv.slice(2))
