// Ordering for the zstd decoder: frames decode in parallel, their output must leave in input
// order.

/**
 * Promises consumed in the order they were added. Each gets a rejection handler at once, so a
 * failure waiting in the queue is not reported as unhandled before it is awaited.
 */
export class InOrder<T> {
  private readonly entries: { promise: Promise<T>; settled: boolean }[] = [];

  get size(): number {
    return this.entries.length;
  }

  add(promise: Promise<T>): void {
    const entry = { promise, settled: false };
    const markSettled = (): void => {
      entry.settled = true;
    };
    promise.then(markSettled, markSettled);
    this.entries.push(entry);
  }

  headSettled(): boolean {
    return this.entries[0]?.settled ?? false;
  }

  next(): Promise<T> {
    return this.entries.shift()!.promise;
  }
}
