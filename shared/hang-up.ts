// Whether this process was started with hang-ups ignored, as `nohup openclaw …` starts it.
// Node puts every inherited "ignore" back to the default at start-up, before any script
// runs, so the process cannot see it itself: the launcher (bin/openclaw.js, a shell script
// when run as a command) reads it from its own signal mask in /proc and passes it on in
// OPENCLAW_HANGUP_IGNORED. The same reset happens in every process Node starts (libuv), so
// a --pipe command is told again by its shell (pipe.ts).

/** True when the launcher found SIGHUP ignored (nohup): a hang-up must not stop the command. */
export function hangUpIgnored(): boolean {
  return process.env.OPENCLAW_HANGUP_IGNORED === '1';
}
