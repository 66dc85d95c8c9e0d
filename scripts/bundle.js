// Bundles the compiled JavaScript (build/) into the self-contained files under dist/ with ncc.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const ncc = require('@vercel/ncc')
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..')

// ESM bundles of CommonJS packages (ssh2) still name these; define them from import.meta.url.
const prelude = [
  "import { createRequire as __herdCreateRequire } from 'node:module';",
  "import { fileURLToPath as __herdFileURLToPath } from 'node:url';",
  "import { dirname as __herdDirname } from 'node:path';",
  'const require = __herdCreateRequire(import.meta.url);',
  'const __filename = __herdFileURLToPath(import.meta.url);',
  'const __dirname = __herdDirname(__filename);',
  '',
].join('\n')

const bundles = [
  // Each front end's entry is a small supervisor that runs its work bundle in a child process (src/core/supervise.ts).
  { entry: 'build/src/cli/index.js', out: 'dist/cli/index.js', shebang: true },
  { entry: 'build/src/cli/herd.js', out: 'dist/cli/herd.js' },
  // The agent is minified: every host's copy crosses the runner's link before that host can join the
  // swarm (226 KB gzipped instead of 398 KB: at N = 32 and 20 Mbit/s about 2 s less before the last host starts).
  { entry: 'build/src/agent/index.js', out: 'dist/agent/agent.mjs', single: true, minify: true },
  ...(fs.existsSync(path.join(root, 'build/src/action/main.js')) ? [{ entry: 'build/src/action/main.js', out: 'dist/action/main.js' }, { entry: 'build/src/action/step.js', out: 'dist/action/step.js' }, { entry: 'build/src/action/post.js', out: 'dist/action/post.js' }] : []),
]

const cleared = new Set()
for (const b of bundles) {
  const { code, assets } = await ncc(path.join(root, b.entry), { minify: !!b.minify, sourceMap: false, quiet: true, target: 'es2022', externals: ['cpu-features'] })
  const outFile = path.join(root, b.out)
  // Clear each output folder once: main.js and post.js share dist/action.
  if (!cleared.has(path.dirname(outFile))) {
    fs.rmSync(path.dirname(outFile), { recursive: true, force: true })
    cleared.add(path.dirname(outFile))
  }
  fs.mkdirSync(path.dirname(outFile), { recursive: true })
  let body = code.replace(/^#!.*\n/, '')
  fs.writeFileSync(outFile, (b.shebang ? '#!/usr/bin/env node\n' : '') + prelude + body, { mode: b.shebang ? 0o755 : 0o644 })
  // The agent travels alone: its only split chunk is node-fetch's multipart parser, which it never loads.
  for (const [name, asset] of b.single ? [] : Object.entries(assets ?? {})) {
    // Native add-ons are optional (ws, ssh2 fall back to JS) and pageant is Windows-only: keep dist pure JS.
    if (name.endsWith('.node') || name.endsWith('.exe')) continue
    const target = path.join(path.dirname(outFile), name)
    fs.mkdirSync(path.dirname(target), { recursive: true })
    fs.writeFileSync(target, asset.source)
  }
  console.log(`${b.out}: ${(fs.statSync(outFile).size / 1024).toFixed(0)} KiB`)
}
