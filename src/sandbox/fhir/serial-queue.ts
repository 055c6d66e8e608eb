/**
 * Runs async tasks one at a time in arrival order. The sandbox puts every write through one queue so
 * that version numbers, change events and transaction rollback never see two writes interleave.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const result = this.tail.then(task, task);
    // The queue continues whether this task succeeds or fails; the caller still sees the failure.
    this.tail = result.catch(() => undefined);
    return result;
  }
}
