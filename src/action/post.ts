// Entry of the Action's post step (dist/action/post.js): stops a main step that is still running, removes the key.
import fs from 'node:fs'
import * as core from '@actions/core'
import { STATE, processStart } from './state.js'

/** Waits until the process with this PID and start time is gone; false on timeout. */
async function gone(pid: number, start: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs
  while (processStart(pid) === start) {
    if (Date.now() > deadline) return false
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return true
}

/** The main step ends its own run when the job is cancelled; this catches one that did not (tracker, seeder, SSH sessions). */
async function stopMain(): Promise<void> {
  const pid = Number(core.getState(STATE.mainPid))
  const start = core.getState(STATE.mainStart)
  if (!Number.isInteger(pid) || pid <= 1 || !start || processStart(pid) !== start) return core.info('herd: the main step has ended; nothing to stop')
  core.info(`herd: the main step (pid ${pid}) is still running; stopping it`)
  process.kill(pid, 'SIGTERM')
  if (await gone(pid, start, 15_000)) return
  core.warning(`herd: the main step (pid ${pid}) ignored SIGTERM for 15 s; killing it (agents on the hosts exit when their SSH session closes)`)
  process.kill(pid, 'SIGKILL')
  await gone(pid, start, 5_000)
}

async function cleanup(): Promise<void> {
  try {
    await stopMain()
  } catch (err) {
    core.warning(`herd: could not stop the main step: ${(err as Error).message}`)
  }
  const secrets = core.getState(STATE.secretsDir)
  if (secrets) {
    fs.rmSync(secrets, { recursive: true, force: true })
    core.info(`herd: removed ${secrets}`)
  }
}

cleanup().then(
  () => process.exit(),
  (err) => {
    core.warning(`herd: cleanup failed: ${(err as Error)?.message ?? err}`)
    process.exit()
  },
)
