// The Action's main step: inputs → plan → distribute → report file, outputs, annotations, logs artifact, job summary.
import fs from 'node:fs'
import * as core from '@actions/core'
import { makePlan, PlanError } from '../core/plan.js'
import { distribute } from '../core/distribute.js'
import { eventLines, formatBytes } from '../core/report-text.js'
import { count, type Report } from '../core/report.js'
import { getInputs, InputError, planErrorMessage, toHerdOptions } from './inputs.js'
import type { ActionSettings } from './settings.js'
import { maskSecrets, writeRunFiles, type RunFiles } from './run-files.js'
import { annotateFailures, outcomeLine, writeSummary } from './summary.js'
import { uploadLogs } from './artifact.js'
import { STATE, processStart } from './state.js'
import { onStopSignal } from '../core/exit.js'

function setOutputs(report: Report, reportPath: string): void {
  core.setOutput('succeeded', JSON.stringify(report.succeeded))
  core.setOutput('failed', JSON.stringify(report.failed))
  core.setOutput('report', reportPath)
  core.setOutput('duration-seconds', report.seconds.toFixed(1))
  core.setOutput('bytes-from-runner', String(report.bytesFromRunner))
}

async function summarize(report: Report, details: { reportPath: string; logs: string }): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return core.info('no job summary here (GITHUB_STEP_SUMMARY unset)')
  try {
    await writeSummary(report, details)
  } catch (err) {
    core.warning(`job summary not written: ${(err as Error).message}`)
  }
}

/** Pushes the file and reports; every outcome ends in setFailed or success, never a throw (local-action calls this). */
export async function run(): Promise<void> {
  core.saveState(STATE.mainPid, String(process.pid))
  core.saveState(STATE.mainStart, processStart(process.pid) ?? '')
  let settings: ActionSettings | undefined
  let files: RunFiles | undefined
  // A cancelled job gets SIGINT, then SIGTERM: the first stops the run cleanly, the next leaves at once.
  const interrupt = new AbortController()
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupt.signal.aborted) {
      if (files) fs.rmSync(files.secretsDir, { recursive: true, force: true })
      process.exit(1)
    }
    core.warning(`herd: ${sig}: stopping every host's agent (again to quit at once)`)
    interrupt.abort(sig)
  }
  const offSignals = onStopSignal(onSignal)
  try {
    settings = getInputs()
    // Masked before anything else can print them; then written for this run only.
    maskSecrets(settings)
    files = writeRunFiles(settings)
    const plan = makePlan(toHerdOptions(settings, files))
    core.info(`herd: pushing ${plan.file} (${formatBytes(plan.size)}) to ${plan.destination} on ${count(plan.hosts.length, 'host')}; logs in ${files.logDir}`)
    const report = await distribute(plan, { ...eventLines({ quiet: false, out: (line) => core.info(line) }), signal: interrupt.signal })
    fs.mkdirSync(files.logDir, { recursive: true })
    fs.writeFileSync(files.reportPath, JSON.stringify(report, null, 2) + '\n')
    setOutputs(report, files.reportPath)
    annotateFailures(report)
    const logs = await uploadLogs(report, settings, files)
    await summarize(report, { reportPath: files.reportPath, logs })
    if (report.exitCode === 0) core.info(`herd: ${outcomeLine(report)}`)
    else core.setFailed(outcomeLine(report))
  } catch (err) {
    if (err instanceof InputError) core.setFailed(err.message)
    else if (err instanceof PlanError) core.setFailed(planErrorMessage(err, settings))
    else core.setFailed(`herd: internal error: ${(err as Error)?.stack ?? String(err)}`)
  } finally {
    offSignals()
    // The key is needed no longer; the post step removes it too if this step never got here.
    if (files) fs.rmSync(files.secretsDir, { recursive: true, force: true })
  }
}
