// Uploads the per-host logs (and report.json) as one build artifact; any trouble is a warning, never the step's failure.
import fs from 'node:fs'
import * as core from '@actions/core'
import { DefaultArtifactClient } from '@actions/artifact'
import type { Report } from '../core/report.js'
import type { ActionSettings } from './settings.js'
import type { RunFiles } from './run-files.js'

/** An upload that has not finished by then is abandoned: the logs stay on the runner. */
const UPLOAD_TIMEOUT_MS = 5 * 60_000

/** The log files the `upload-logs` setting selects: failed hosts' on failure, every host's with `always`. */
export function logsToUpload(report: Report, settings: Pick<ActionSettings, 'uploadLogs'>, reportPath: string): string[] {
  if (settings.uploadLogs === 'never') return []
  const anyFailed = report.hosts.some((h) => h.status !== 'ok')
  if (settings.uploadLogs === 'on-failure' && !anyFailed) return []
  const hosts = settings.uploadLogs === 'always' ? report.hosts : report.hosts.filter((h) => h.status !== 'ok')
  const files = hosts.map((h) => h.logFile).filter((f): f is string => !!f && fs.existsSync(f))
  if (fs.existsSync(reportPath)) files.push(reportPath)
  return files
}

/** Uploads the selected logs; returns where the user finds them (artifact name or folder). */
export async function uploadLogs(report: Report, settings: ActionSettings, run: Pick<RunFiles, 'logDir' | 'reportPath'>): Promise<string> {
  const files = logsToUpload(report, settings, run.reportPath)
  const onRunner = `on the runner in ${run.logDir}`
  if (files.length === 0) return onRunner
  if (!process.env.ACTIONS_RUNTIME_TOKEN || !process.env.ACTIONS_RESULTS_URL) {
    core.warning(`host logs not uploaded: no artifact service here (ACTIONS_RUNTIME_TOKEN or ACTIONS_RESULTS_URL unset); they are ${onRunner}`)
    return onRunner
  }
  let timer: NodeJS.Timeout | undefined
  try {
    const upload = new DefaultArtifactClient().uploadArtifact(settings.artifactName, files, run.logDir, {
      retentionDays: settings.artifactRetentionDays,
    })
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${UPLOAD_TIMEOUT_MS / 1000} s`)), UPLOAD_TIMEOUT_MS)
    })
    const { id, size } = await Promise.race([upload, timeout])
    core.info(`host logs uploaded as artifact ${settings.artifactName} (${files.length} files, ${size ?? 0} bytes, id ${id})`)
    if (id !== undefined) core.setOutput('artifact-id', String(id))
    return `artifact ${settings.artifactName}`
  } catch (err) {
    const why = (err as Error)?.message ?? String(err)
    const hint = /conflict|already exists/i.test(why) ? '; give each use of this action its own artifact-name (matrix jobs too)' : ''
    core.warning(`host logs not uploaded as artifact ${settings.artifactName}: ${why}${hint}; they are ${onRunner}`)
    return onRunner
  } finally {
    clearTimeout(timer)
  }
}
