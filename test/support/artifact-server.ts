// A local stand-in for GitHub's artifact service, enough for @actions/artifact v6 to upload: the two Twirp calls
// (CreateArtifact, FinalizeArtifact) and the Azure block-blob upload to the signed URL CreateArtifact returns.
// Uploaded archives are kept in `dir` (artifacts.json lists them) so tests can open them.
//
// Run in-process with startArtifactServer(), or as its own process (for a runner in another network namespace):
//   node build/test/support/artifact-server.js <dir> [listen-address]
// prints one JSON line {url, token} and serves until SIGTERM or until its standard input closes.
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import zlib from 'node:zlib'
import { fileURLToPath } from 'node:url'

const TWIRP_PREFIX = '/twirp/github.actions.results.api.v1.ArtifactService/'
const ACCOUNT_PATH = '/devstoreaccount1/actions-results'

/** One artifact as the service saw it. */
export interface StoredArtifact {
  id: number
  name: string
  workflowRunBackendId: string
  workflowJobRunBackendId: string
  mimeType?: string
  expiresAt?: string
  /** The archive as committed by the upload; absent until the block list is committed. */
  zipPath?: string
  /** Size and hash the client declared in FinalizeArtifact (checked against the stored archive). */
  size?: number
  sha256?: string
  finalized: boolean
}

export interface ArtifactServerOptions {
  /** Folder for the archives and artifacts.json (created if missing). */
  dir: string
  /** Listen address (default 127.0.0.1). */
  host?: string
  /** Refuse CreateArtifact with 403, as a service that forbids uploads would. */
  refuseCreate?: boolean
}

export interface ArtifactServer {
  /** For ACTIONS_RESULTS_URL. */
  url: string
  /** For ACTIONS_RUNTIME_TOKEN: a JWT whose `scp` claim names the run and job. */
  token: string
  dir: string
  /** ACTIONS_RESULTS_URL and ACTIONS_RUNTIME_TOKEN. */
  env(): Record<string, string>
  /** Every artifact created so far. */
  artifacts(): StoredArtifact[]
  /** Each request line served, e.g. `POST /twirp/.../CreateArtifact 200`. */
  requests: string[]
  close(): Promise<void>
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url')
}

/** A JWT as the runner hands to actions; the library decodes it (never verifies it) and reads `scp`. */
export function runtimeToken(runId: string, jobId: string): string {
  const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }))
  const now = Math.floor(Date.now() / 1000)
  const payload = base64url(JSON.stringify({ scp: `Actions.ExampleScope Actions.Results:${runId}:${jobId}`, iat: now, exp: now + 3600 }))
  return `${header}.${payload}.${base64url(crypto.randomBytes(32))}`
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) })
  res.end(text)
}

function twirpError(res: http.ServerResponse, status: number, code: string, msg: string): void {
  sendJson(res, status, { code, msg })
}

/** An Azure Storage error response (XML body, x-ms-error-code header). */
function azureError(res: http.ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="utf-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`
  res.writeHead(status, { 'Content-Type': 'application/xml', 'x-ms-error-code': code, 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

function azureHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return {
    'x-ms-request-id': crypto.randomUUID(),
    'x-ms-version': '2025-01-05',
    'x-ms-request-server-encrypted': 'true',
    Date: new Date().toUTCString(),
    'Content-Length': '0',
    ...extra,
  }
}

export async function startArtifactServer(opts: ArtifactServerOptions): Promise<ArtifactServer> {
  fs.mkdirSync(opts.dir, { recursive: true })
  const runId = crypto.randomUUID()
  const jobId = crypto.randomUUID()
  const token = runtimeToken(runId, jobId)
  const artifacts: StoredArtifact[] = []
  const requests: string[] = []
  /** Signed upload target (blob path) → artifact, its SAS signature, and the staged blocks. */
  const uploads = new Map<string, { artifact: StoredArtifact; sig: string; blocks: Map<string, Buffer> }>()
  const save = () => fs.writeFileSync(path.join(opts.dir, 'artifacts.json'), JSON.stringify(artifacts, null, 2))
  let base = ''

  const twirp = async (method: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    if (req.headers.authorization !== `Bearer ${token}`) return twirpError(res, 401, 'unauthenticated', 'bad or missing bearer token')
    if (!String(req.headers['content-type']).startsWith('application/json')) return twirpError(res, 415, 'malformed', 'expected application/json')
    let body: Record<string, unknown>
    try {
      body = JSON.parse((await readBody(req)).toString('utf8')) as Record<string, unknown>
    } catch {
      return twirpError(res, 400, 'malformed', 'body is not JSON')
    }
    if (body.workflow_run_backend_id !== runId || body.workflow_job_run_backend_id !== jobId) {
      return twirpError(res, 400, 'invalid_argument', 'backend ids do not match the token')
    }
    const name = body.name
    if (typeof name !== 'string' || name === '') return twirpError(res, 400, 'invalid_argument', 'name is required')
    if (method === 'CreateArtifact') {
      if (opts.refuseCreate) return twirpError(res, 403, 'permission_denied', 'artifact uploads are refused by this test server')
      if (body.version !== 7) return twirpError(res, 400, 'invalid_argument', `unsupported version ${String(body.version)}`)
      if (artifacts.some((a) => a.name === name)) return twirpError(res, 409, 'already_exists', 'an artifact with this name already exists on the workflow run')
      const artifact: StoredArtifact = {
        id: artifacts.length + 1,
        name,
        workflowRunBackendId: runId,
        workflowJobRunBackendId: jobId,
        mimeType: typeof body.mime_type === 'string' ? body.mime_type : undefined,
        expiresAt: typeof body.expires_at === 'string' ? body.expires_at : undefined,
        finalized: false,
      }
      artifacts.push(artifact)
      save()
      const blobPath = `${ACCOUNT_PATH}/${runId}/${jobId}/${encodeURIComponent(name)}.zip`
      const sig = base64url(crypto.randomBytes(24))
      uploads.set(blobPath, { artifact, sig, blocks: new Map() })
      const expiry = new Date(Date.now() + 3600_000).toISOString()
      const signed = `${base}${blobPath}?sv=2025-01-05&se=${encodeURIComponent(expiry)}&sr=b&sp=cw&sig=${encodeURIComponent(sig)}`
      return sendJson(res, 200, { ok: true, signed_upload_url: signed })
    }
    if (method === 'FinalizeArtifact') {
      const artifact = artifacts.find((a) => a.name === name)
      if (!artifact) return twirpError(res, 404, 'not_found', `no artifact ${name}`)
      if (!artifact.zipPath) return twirpError(res, 400, 'failed_precondition', 'the upload was never committed')
      const stored = fs.readFileSync(artifact.zipPath)
      const size = Number(body.size)
      if (size !== stored.length) return twirpError(res, 400, 'invalid_argument', `size ${String(body.size)} but ${stored.length} bytes were uploaded`)
      const sha256 = crypto.createHash('sha256').update(stored).digest('hex')
      if (body.hash !== undefined && body.hash !== `sha256:${sha256}`) return twirpError(res, 400, 'invalid_argument', `hash ${String(body.hash)} does not match the upload`)
      Object.assign(artifact, { size, sha256, finalized: true })
      save()
      return sendJson(res, 200, { ok: true, artifact_id: String(artifact.id) })
    }
    return twirpError(res, 404, 'bad_route', `no method ${method}`)
  }

  const blob = async (url: URL, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const upload = uploads.get(url.pathname)
    if (!upload) return azureError(res, 404, 'ContainerNotFound', 'no such upload target')
    if (url.searchParams.get('sig') !== upload.sig) return azureError(res, 403, 'AuthenticationFailed', 'signature mismatch')
    if (req.method !== 'PUT') return azureError(res, 405, 'UnsupportedHttpVerb', `${req.method} is not supported here`)
    const body = await readBody(req)
    const comp = url.searchParams.get('comp')
    if (comp === 'block') {
      const id = url.searchParams.get('blockid')
      if (!id) return azureError(res, 400, 'InvalidQueryParameterValue', 'blockid is required')
      const length = Number(req.headers['content-length'])
      if (Number.isFinite(length) && length !== body.length) return azureError(res, 400, 'InvalidHeaderValue', 'content-length mismatch')
      upload.blocks.set(id, body)
      res.writeHead(201, azureHeaders())
      return void res.end()
    }
    if (comp === 'blocklist') {
      const ids = [...body.toString('utf8').matchAll(/<(?:Latest|Uncommitted|Committed)>([^<]*)<\/(?:Latest|Uncommitted|Committed)>/g)].map((m) => m[1]!)
      const missing = ids.filter((id) => !upload.blocks.has(id))
      if (missing.length) return azureError(res, 400, 'InvalidBlockList', `unknown blocks ${missing.join(', ')}`)
      const zip = Buffer.concat(ids.map((id) => upload.blocks.get(id)!))
      const zipPath = path.join(opts.dir, `${upload.artifact.id}-${upload.artifact.name.replace(/[^A-Za-z0-9_.-]/g, '_')}.zip`)
      fs.writeFileSync(zipPath, zip)
      upload.artifact.zipPath = zipPath
      save()
      res.writeHead(201, azureHeaders({ ETag: `"0x${crypto.randomBytes(8).toString('hex').toUpperCase()}"`, 'Last-Modified': new Date().toUTCString() }))
      return void res.end()
    }
    return azureError(res, 400, 'InvalidQueryParameterValue', `comp=${comp} is not supported here`)
  }

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const handled = url.pathname.startsWith(TWIRP_PREFIX)
      ? req.method === 'POST'
        ? twirp(url.pathname.slice(TWIRP_PREFIX.length), req, res)
        : Promise.resolve(twirpError(res, 405, 'bad_route', 'twirp wants POST'))
      : blob(url, req, res)
    handled
      .catch((err: Error) => {
        if (!res.headersSent) twirpError(res, 500, 'internal', err.message)
      })
      .finally(() => requests.push(`${req.method} ${url.pathname}${url.searchParams.has('comp') ? `?comp=${url.searchParams.get('comp')}` : ''} ${res.statusCode}`))
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, opts.host ?? '127.0.0.1', () => resolve())
  })
  const address = server.address() as { address: string; port: number }
  base = `http://${address.address}:${address.port}`
  save()
  return {
    url: `${base}/`,
    token,
    dir: opts.dir,
    env: () => ({ ACTIONS_RESULTS_URL: `${base}/`, ACTIONS_RUNTIME_TOKEN: token }),
    artifacts: () => artifacts.map((a) => ({ ...a })),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

/** Artifacts recorded by a server running in another process. */
export function readArtifacts(dir: string): StoredArtifact[] {
  return JSON.parse(fs.readFileSync(path.join(dir, 'artifacts.json'), 'utf8')) as StoredArtifact[]
}

/** The files in a zip archive (read from its central directory), name → contents. */
export function readZip(file: string): Map<string, Buffer> {
  const zip = fs.readFileSync(file)
  let eocd = -1
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 65535); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i
      break
    }
  }
  if (eocd < 0) throw new Error(`${file}: not a zip archive (no end of central directory)`)
  const count = zip.readUInt16LE(eocd + 10)
  let at = zip.readUInt32LE(eocd + 16)
  const files = new Map<string, Buffer>()
  for (let n = 0; n < count; n++) {
    if (zip.readUInt32LE(at) !== 0x02014b50) throw new Error(`${file}: bad central directory entry at ${at}`)
    const method = zip.readUInt16LE(at + 10)
    const compressedSize = zip.readUInt32LE(at + 20)
    const nameLength = zip.readUInt16LE(at + 28)
    const extraLength = zip.readUInt16LE(at + 30)
    const commentLength = zip.readUInt16LE(at + 32)
    const localHeader = zip.readUInt32LE(at + 42)
    const name = zip.toString('utf8', at + 46, at + 46 + nameLength)
    const dataStart = localHeader + 30 + zip.readUInt16LE(localHeader + 26) + zip.readUInt16LE(localHeader + 28)
    const data = zip.subarray(dataStart, dataStart + compressedSize)
    if (!name.endsWith('/')) files.set(name, method === 8 ? zlib.inflateRawSync(data) : Buffer.from(data))
    at += 46 + nameLength + extraLength + commentLength
  }
  return files
}

// As its own process: serve until told to stop (SIGTERM) or until the parent goes away (stdin closes).
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir, host] = process.argv.slice(2)
  if (!dir) {
    process.stderr.write('usage: artifact-server.js <dir> [listen-address]\n')
    process.exit(2)
  }
  const server = await startArtifactServer({ dir, host, refuseCreate: process.env.ARTIFACT_SERVER_REFUSE_CREATE === '1' })
  const stop = () => void server.close().then(() => process.exit(0))
  process.on('SIGTERM', stop)
  process.stdin.on('end', stop).on('close', stop).resume()
  process.stdout.write(JSON.stringify({ url: server.url, token: server.token }) + '\n')
}
