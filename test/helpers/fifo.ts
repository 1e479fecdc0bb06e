import { closeSync, constants as fsConstants, openSync } from 'node:fs';

/**
 * Runs `run` while a FIFO may sit at `file`: an open of it that waits for a writer (the defect
 * under test) is let go after 2 s, so that the test fails rather than hangs.
 */
export async function lettingWaitingOpensGo<T>(file: string, run: () => Promise<T>): Promise<T> {
  const unblock = setTimeout(() => {
    try {
      closeSync(openSync(file, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK));
    } catch {
      // No reader waiting.
    }
  }, 2_000);
  try {
    return await run();
  } finally {
    clearTimeout(unblock);
  }
}
