// vitest globalSetup: the tests see none of the caller's AWS_ and OPENCLAW_ variables (the
// config's `env` then sets what every test runs with). An operator's exported AWS_PROFILE, as
// the README has them write, failed every remote-mode test: doctor, cron-cli, remote-*
// ("AWS profile … is in neither shared config file"); an AWS_ENDPOINT_URL or AWS_REGION would
// send the SDK elsewhere. Tests that want one set it themselves.

const CALLERS = /^(AWS_|OPENCLAW_)/;

export default function setup(): () => void {
  const removed = Object.entries(process.env).filter(([name]) => CALLERS.test(name));
  for (const [name] of removed) delete process.env[name];
  return () => {
    for (const [name, value] of removed) process.env[name] = value;
  };
}
