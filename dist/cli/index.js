#!/usr/bin/env node
import { createRequire as __herdCreateRequire } from 'node:module';
import { fileURLToPath as __herdFileURLToPath } from 'node:url';
import { dirname as __herdDirname } from 'node:path';
const require = __herdCreateRequire(import.meta.url);
const __filename = __herdFileURLToPath(import.meta.url);
const __dirname = __herdDirname(__filename);
import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
var __webpack_exports__ = {};

;// CONCATENATED MODULE: external "node:child_process"
const external_node_child_process_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:child_process");
;// CONCATENATED MODULE: external "node:url"
const external_node_url_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:url");
;// CONCATENATED MODULE: ./build/src/core/exit.js
// How a front end's work process ends once its work and output are done, and what it tells the process
// that supervises it (supervise.ts).
/** The signals the front ends handle (stop cleanly, again to quit at once) and the supervisor passes on. */
const RELAYED_SIGNALS = ['SIGINT', 'SIGTERM'];
/** A signal the supervisor passes on is taken for one the work got itself if they come this close. */
const SAME_SIGNAL_MS = 1000;
/** How long a passed-on signal waits for the work's own copy before it counts as a signal of its own. */
const RELAY_WAIT_MS = 300;
let stopHandler;
/** When the work last got each signal itself, not yet matched by the supervisor's message. */
const gotAt = new Map();
/** Passed-on signals waiting for the work's own copy. */
const waiting = new Map();
function gotItself(sig) {
    const timer = waiting.get(sig)?.shift();
    if (timer)
        clearTimeout(timer);
    else
        gotAt.set(sig, performance.now());
    stopHandler?.(sig);
}
function passedOn(sig) {
    const at = gotAt.get(sig);
    if (at !== undefined && performance.now() - at < SAME_SIGNAL_MS)
        return void gotAt.delete(sig);
    const timers = waiting.get(sig) ?? [];
    waiting.set(sig, timers);
    timers.push(setTimeout(() => {
        timers.shift();
        // No handler yet (or any more): the signal's own default, as if sent here.
        if (stopHandler)
            stopHandler(sig);
        else
            process.kill(process.pid, sig);
    }, RELAY_WAIT_MS));
}
/**
 * Calls `handler` once for each SIGINT or SIGTERM sent to this run; returns what stops that. A signal to the
 * process group (a terminal's Ctrl-C, a CI runner stopping the job) reaches the work and its supervisor
 * both; one to the supervisor's PID alone (GitHub's runner cancelling the step) reaches only it. The
 * supervisor passes each on as a message, and a message that comes within SAME_SIGNAL_MS of the work's own
 * copy is that copy: both are read in the same turn of the event loop even when it was busy, so the work
 * sees each signal once (a second one means "quit at once" to the front ends).
 */
function onStopSignal(handler) {
    stopHandler = handler;
    for (const sig of RELAYED_SIGNALS)
        process.on(sig, gotItself);
    return () => {
        stopHandler = undefined;
        for (const sig of RELAYED_SIGNALS)
            process.off(sig, gotItself);
    };
}
/**
 * The event loop runs this long more before the exit. Node's shutdown joins V8's helper threads, and a
 * helper still compiling can wait there for a collection only the main thread runs, which never comes
 * (nodejs/node#54918; seen three times in a day here, node 24.21: the report printed, then no exit).
 * While the loop runs, V8 can still serve such a helper. The supervisor ends a process that hangs anyway.
 */
const EXIT_GRACE_MS = 250;
/** Exits with `code` (or process.exitCode) after EXIT_GRACE_MS, even if a library keeps a handle open. */
function leave(code) {
    // Not process.exit(undefined): an argument, even undefined, replaces process.exitCode (setFailed's 1).
    setTimeout(() => (code === undefined ? process.exit() : process.exit(code)), EXIT_GRACE_MS);
}
/**
 * Under a supervisor: every exit (leave, a second signal's quit, an internal error, a crash) tells it the
 * code before node's shutdown, where the hang is; and a supervisor that goes away (killed, even before this
 * ran) takes the run with it: the work stops as on SIGTERM.
 */
function reportToSupervisor() {
    if (!process.send)
        return; // run directly: no supervisor
    if (!process.connected)
        return void process.kill(process.pid, 'SIGTERM');
    process.on('exit', (code) => {
        if (process.connected)
            process.send?.({ exiting: code });
    });
    process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
    process.on('message', (m) => {
        if (m.signal && RELAYED_SIGNALS.includes(m.signal))
            passedOn(m.signal);
    });
    // Listeners hold the channel open; the work's end is decided by leave() or an exit, not by the channel.
    process.channel?.unref();
}

;// CONCATENATED MODULE: ./build/src/core/supervise.js
// The process a front end's entry starts as: it runs the work in a child node process and exits with the
// child's code. Node 24 can deadlock in its own shutdown after the work is done (nodejs/node#54918: a V8
// compile job waits for a collection only the main thread could run, and the main thread is joining it);
// a push that reported and never exits would hang the user's CI step. This process does no work of its
// own, so nothing of V8's is in flight when it exits.



/** After the child says it is exiting (its work done, its output written), how long that may take before it is ended. */
const EXIT_DEADLINE_MS = 10_000;
/**
 * Runs `file` (a name beside `entry`, the caller's import.meta.url) with this process's arguments and exits
 * as it does. `name` starts this process's own messages.
 */
function supervise(file, entry, name) {
    // Resolved here, not at the call: the bundler would turn a literal new URL(file, import.meta.url) into a build-time path.
    const script = (0,external_node_url_namespaceObject.fileURLToPath)(new URL(file, entry));
    // Node's own flags go along (a heap limit, say), but not the inspector's: its port is this process's.
    const flags = process.execArgv.filter((f) => !f.startsWith('--inspect'));
    // The child stays in this process group: a terminal's Ctrl-C or Ctrl-Z, or a CI runner killing the job's
    // group, reaches the work as it would a single process.
    const child = (0,external_node_child_process_namespaceObject.spawn)(process.execPath, [...flags, script, ...process.argv.slice(2)], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
    // Passed on as a message: the work tells it from its own copy of a group signal (exit.ts, onStopSignal).
    const passOn = (sig) => () => {
        if (child.connected)
            child.send({ signal: sig });
        else if (child.exitCode === null && child.signalCode === null)
            child.kill(sig);
    };
    for (const sig of RELAYED_SIGNALS)
        process.on(sig, passOn(sig));
    let reported;
    child.on('error', (err) => {
        process.stderr.write(`${name}: could not start ${script}: ${err.message}\n`);
        process.exit(70);
    });
    child.on('message', (m) => {
        if (m.exiting === undefined || reported !== undefined)
            return;
        reported = m.exiting;
        setTimeout(() => {
            process.stderr.write(`${name}: node did not exit ${EXIT_DEADLINE_MS / 1000} s after the work ended (nodejs/node#54918); ended it, the result stands\n`);
            child.kill('SIGKILL');
        }, EXIT_DEADLINE_MS).unref();
    });
    child.on('exit', (code, signal) => {
        if (code !== null)
            process.exit(code);
        if (reported !== undefined)
            process.exit(reported);
        // Killed before it could say: die of the same signal, so that a calling shell sees what happened.
        for (const sig of RELAYED_SIGNALS)
            process.removeAllListeners(sig);
        process.kill(process.pid, signal);
    });
}

;// CONCATENATED MODULE: ./build/src/cli/index.js
// Entry of the `herd` command: runs herd.js in a child process and exits as it does (see supervise.ts).

supervise('./herd.js', import.meta.url, 'herd');

