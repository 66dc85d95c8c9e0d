// Entry of the Action's main step (dist/action/main.js): runs step.js in a child process and exits as it does.
import { supervise } from '../core/supervise.js'

supervise('./step.js', import.meta.url, 'herd')
