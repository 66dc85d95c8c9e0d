// The `herd` command's work (index.ts runs it in a child process): parse the command line, run the push,
// print the report, exit with a documented code.
import fs from 'node:fs'
import { parseCli, CommanderError } from './args.js'
import { makeRenderer, summaryLines } from './render.js'
import { makePlan, PlanError } from '../core/plan.js'
import { distribute } from '../core/distribute.js'
import { EXIT } from '../core/report.js'
import { VERSION } from '../core/version.js'
import { leave, onStopSignal, reportToSupervisor } from '../core/exit.js'

async function main(): Promise<number> {
  let settings
  try {
    settings = parseCli(process.argv.slice(2), VERSION, process.stdin.isTTY === true)
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.ok
      process.stderr.write(`herd: run 'herd --help' for usage\n`)
      return EXIT.usage
    }
    throw err
  }
  const out = (line: string) => (settings.json ? process.stderr : process.stdout).write(line + '\n')
  if (settings.dataFileIgnored) process.stderr.write('herd: --data-file is accepted for herd.py compatibility and has no use now\n')
  if (settings.hostsFromStdin) settings.options.hostsText = fs.readFileSync(0, 'utf8')
  let plan
  try {
    plan = makePlan(settings.options)
  } catch (err) {
    if (err instanceof PlanError) {
      process.stderr.write(`herd: ${err.message}\n`)
      return EXIT.usage
    }
    throw err
  }
  const interrupt = new AbortController()
  let signals = 0
  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => {
    signals++
    if (signals > 1) process.exit(sig === 'SIGINT' ? EXIT.sigint : EXIT.sigterm)
    process.stderr.write(`herd: ${sig}: stopping every agent and removing temporary files (again to quit at once)\n`)
    interrupt.abort(sig)
  }
  onStopSignal(onSignal)
  const renderer = makeRenderer({ tty: process.stderr.isTTY === true && !settings.json, quiet: settings.quiet, hosts: plan.hosts.length, size: plan.size, out })
  try {
    const report = await distribute(plan, { ...renderer, signal: interrupt.signal })
    renderer.stop()
    for (const line of summaryLines(report)) out(line)
    if (settings.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n')
    return report.exitCode
  } catch (err) {
    renderer.stop()
    if (err instanceof PlanError) {
      process.stderr.write(`herd: ${err.message}\n`)
      return EXIT.usage
    }
    throw err
  }
}

reportToSupervisor()
main().then(
  (code) => {
    process.exitCode = code
    // Leave once output is flushed, even if a library keeps a handle open.
    process.stdout.write('', () => leave(code))
  },
  (err) => {
    process.stderr.write(`herd: internal error: ${(err as Error)?.stack ?? err}\n`)
    process.exit(70)
  },
)
