// What a scheduled invocation throws when its operation failed, so that Lambda retries it and
// counts it in Errors: the core error's name and the one safe line of its message. Kept apart
// from the handlers (backup-handler.ts, prune-handler.ts) so the coordinating functions (the fan-out) do not pull in the core that
// runs backups, and with it its native modules.

import type { ErrorBody } from '../shared/control-plane/protocol.js';

export class ScheduledOperationError extends Error {
  constructor(body: ErrorBody, name: string) {
    super(`${body.code}: ${body.message}`);
    this.name = name;
  }
}
