/** Resolves with the first SIGINT or SIGTERM, for commands that serve until they are told to stop. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolveSignal) => {
    const stop = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolveSignal(signal);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}
