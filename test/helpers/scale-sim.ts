// The pieces of the 10,000-tenant simulation (test/scale-simulation.test.ts): a virtual
// clock (sleepers wake in time order when the driver moves it; no real time passes), an SQS
// standard queue with visibility timeouts, receive counts and a redrive to a DLQ, and a
// Lambda SQS event source mapping that invokes a handler with one message at a time, never
// more than `maxConcurrency` at once, deleting what succeeded and leaving what the partial
// batch response names to come back after its visibility timeout.

export class VirtualClock {
  private timers: { at: number; seq: number; wake: () => void }[] = [];
  private seq = 0;
  constructor(public now = 0) {}

  sleep(ms: number): Promise<void> {
    return new Promise((wake) => {
      const timer = { at: this.now + Math.max(0, ms), seq: this.seq++, wake };
      let index = this.timers.length;
      while (index > 0 && (this.timers[index - 1]!.at > timer.at || (this.timers[index - 1]!.at === timer.at && this.timers[index - 1]!.seq > timer.seq))) index--;
      this.timers.splice(index, 0, timer);
    });
  }

  nextAt(): number | undefined {
    return this.timers[0]?.at;
  }

  /** Moves the clock to `at`, waking every sleeper due by then. */
  advanceTo(at: number): void {
    this.now = Math.max(this.now, at);
    while (this.timers.length > 0 && this.timers[0]!.at <= this.now) this.timers.shift()!.wake();
  }
}

/** Lets every promise continuation that is ready run (they all run before the next macrotask). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export interface QueuedMessage {
  readonly id: string;
  readonly body: string;
  receiveCount: number;
  visibleAt: number;
}

export class SimulatedQueue {
  private readonly messages = new Map<string, QueuedMessage>();
  readonly deadLetters: QueuedMessage[] = [];
  private nextId = 0;

  constructor(
    private readonly clock: VirtualClock,
    private readonly visibilityTimeoutMs: number,
    private readonly maxReceiveCount: number,
  ) {}

  send(body: string): string {
    const id = `msg-${this.nextId++}`;
    this.messages.set(id, { id, body, receiveCount: 0, visibleAt: this.clock.now });
    return id;
  }

  /** The oldest visible message, now invisible for the visibility timeout; one past its last receive goes to the DLQ instead. */
  receive(): QueuedMessage | undefined {
    for (const message of this.messages.values()) {
      if (message.visibleAt > this.clock.now) continue;
      if (message.receiveCount >= this.maxReceiveCount) {
        this.messages.delete(message.id);
        this.deadLetters.push(message);
        continue;
      }
      message.receiveCount++;
      message.visibleAt = this.clock.now + this.visibilityTimeoutMs;
      return message;
    }
    return undefined;
  }

  delete(id: string): void {
    this.messages.delete(id);
  }

  nextVisibleAt(): number | undefined {
    let next: number | undefined;
    for (const message of this.messages.values()) if (next === undefined || message.visibleAt < next) next = message.visibleAt;
    return next;
  }

  get size(): number {
    return this.messages.size;
  }
}

type BatchHandler = (event: unknown, invocation: { readonly startedAt: number }) => Promise<{ batchItemFailures: readonly { itemIdentifier: string }[] }>;

export interface DrainStats {
  readonly invocations: number;
  readonly mostAtOnce: number;
  /** When the queue was last empty with nothing running. */
  readonly finishedAt: number;
}

/**
 * Runs the event source mapping until the queue is empty, nothing runs and `busy()` (e.g. a
 * fan-out still sending) says there is nothing more to come, moving the clock from one
 * event to the next.
 */
export async function drain(queue: SimulatedQueue, clock: VirtualClock, handler: BatchHandler, maxConcurrency: number, busy: () => boolean = () => false): Promise<DrainStats> {
  let running = 0;
  let mostAtOnce = 0;
  let invocations = 0;
  let idle = 0;
  for (;;) {
    while (running < maxConcurrency) {
      const message = queue.receive();
      if (message === undefined) break;
      running++;
      invocations++;
      mostAtOnce = Math.max(mostAtOnce, running);
      const record = { messageId: message.id, body: message.body, eventSource: 'aws:sqs', attributes: { ApproximateReceiveCount: String(message.receiveCount) } };
      void handler({ Records: [record] }, { startedAt: clock.now }).then(
        (answer) => {
          if (!answer.batchItemFailures.some((failure) => failure.itemIdentifier === message.id)) queue.delete(message.id);
          running--;
        },
        () => {
          running--; // a crashed invocation: the message comes back after its visibility timeout
        },
      );
    }
    await settle();
    if (running === 0 && queue.size === 0 && !busy()) return { invocations, mostAtOnce, finishedAt: clock.now };
    const candidates = [clock.nextAt(), running < maxConcurrency ? queue.nextVisibleAt() : undefined].filter((at): at is number => at !== undefined);
    if (candidates.length === 0) {
      if ((running > 0 || busy()) && ++idle < 1000) {
        await settle();
        continue;
      }
      throw new Error('simulation stuck: nothing running, nothing due');
    }
    idle = 0;
    clock.advanceTo(Math.max(clock.now, Math.min(...candidates)));
    await settle();
  }
}
