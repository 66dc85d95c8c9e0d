// Finds the bundled agent that travels to the hosts, and names it by its hash.
import fs from 'node:fs'
import crypto from 'node:crypto'
import zlib from 'node:zlib'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

/** The agent's bytes and SHA-256; the remote file is `agent-<sha256 prefix>.mjs`. */
export interface AgentBundle {
  path: string
  bytes: Buffer
  /** What travels: the bundle gzipped (about a fifth of its size); the host unpacks it once. */
  gzipped: Buffer
  sha256: string
  remoteName: string
}

let cached: AgentBundle | undefined

/** dist/agent/agent.mjs beside the running bundle (dist/cli, dist/action) or the repository's dist. */
export function loadAgentBundle(): AgentBundle {
  if (cached) return cached
  // Built at run time from segments so the bundler does not copy a stale agent into each bundle.
  const here = path.dirname(fileURLToPath(import.meta.url))
  const agentFile = ['agent', 'agent.mjs']
  const candidates = [
    process.env.HERD_AGENT_BUNDLE,
    path.join(here, '..', ...agentFile),
    path.join(here, '..', '..', 'dist', ...agentFile),
    path.join(here, '..', '..', '..', 'dist', ...agentFile),
  ].filter((p): p is string => !!p)
  const found = candidates.find((p) => fs.existsSync(p))
  if (!found) throw new Error(`the agent bundle is missing (looked in ${candidates.join(', ')}); run npm run build`)
  const bytes = fs.readFileSync(found)
  const sha256 = crypto.createHash('sha256').update(bytes).digest('hex')
  // Every host's copy crosses the runner's link: send it compressed (about 0.1 s to gzip, once).
  cached = { path: found, bytes, gzipped: zlib.gzipSync(bytes, { level: 9 }), sha256, remoteName: `agent-${sha256.slice(0, 20)}.mjs` }
  return cached
}

/**
 * Runs on the host under `node -e`: starts the agent only if its bytes hash to the expected value. When
 * the unpacked agent is missing or wrong it unpacks `NAME.gz` (as uploaded), checks the hash again and
 * renames it into place; with neither it exits 97 so the runner uploads it. A planted or damaged file is
 * never executed. One line without `!`: a csh or tcsh login shell expands `!` even in single quotes.
 */
export const BOOTSTRAP =
  "const fs=require('fs'),c=require('crypto'),p=require('path'),u=require('url'),z=require('zlib');" +
  "const [f,h]=process.argv.slice(1),ok=b=>b?c.createHash('sha256').update(b).digest('hex')===h:false;" +
  'let b=null;try{b=fs.readFileSync(f)}catch(e){}' +
  "if(ok(b)===false){try{b=z.gunzipSync(fs.readFileSync(f+'.gz'))}catch(e){process.exit(97)}" +
  "if(ok(b)===false)process.exit(97);const t=f+'.'+process.pid+'.tmp';fs.writeFileSync(t,b,{mode:0o600});fs.renameSync(t,f);fs.rmSync(f+'.gz',{force:true})}" +
  'import(u.pathToFileURL(p.resolve(f)).href).catch(e=>{console.error(e);process.exit(98)})'

/**
 * Node flags the agent runs with. A 1 MiB young generation collects the buffers of finished socket reads
 * and writes within milliseconds instead of letting tens of MiB of them pile up (measured: agent peak
 * RSS 194–213 MiB without it, 150–175 MiB with it, at no cost in time).
 */
export const AGENT_NODE_FLAGS = ['--max-semi-space-size=1']

/**
 * Environment the agent runs with: glibc's allocator keeps up to 64 MiB of freed heap instead of handing
 * it back to the kernel at each collection (other C libraries ignore both). Received blocks die young
 * now (BlockPool), and each collection freed a heap's top that the next socket reads faulted in again:
 * 57-86 thousand page faults per agent for 1 GiB (36-44 thousand before the pool) -> 21-22 thousand,
 * agents' CPU back to where it was before the pool (4 unshaped hosts; bench/README, tenth round).
 * Setting either also fixes glibc's mmap threshold at 128 KiB, so every larger buffer is a mapping of
 * its own: the agent's large buffers are the pooled blocks and the upload read buffers, both reused.
 */
export const AGENT_ENV = ['MALLOC_TRIM_THRESHOLD_=67108864', 'MALLOC_TOP_PAD_=16777216']
